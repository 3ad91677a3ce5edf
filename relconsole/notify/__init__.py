"""Release notifications: Slack incoming webhooks and a generic signed JSON webhook.

`senders` turns a `Notice` into an HTTP request for one target, `delivery` sends them
from a bounded queue per target on threads of its own (retry with backoff; the engine is
never waited on), and `bridge` turns a driving engine's events into notices. The schema
of the generic webhook is docs/notify.md.

This package file imports nothing, so the config loader can read the event names in
`relconsole.notify.events` without loading an HTTP client or the engine.
"""
