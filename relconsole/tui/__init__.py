"""The Textual front end. Only the CLI imports this package."""

from relconsole.tui.app import ReleaseApp

__all__ = ["ReleaseApp"]
