"""The release engine: state machine, gates, poller, journal and lease. No Textual here."""
