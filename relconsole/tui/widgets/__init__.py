"""The dashboard's panels. Each redraws only when its slice of the snapshot changed."""

from relconsole.tui.widgets.canary import CanaryPanel
from relconsole.tui.widgets.flags import FlagsPanel
from relconsole.tui.widgets.gates import GatesPanel
from relconsole.tui.widgets.header import ReleaseHeader
from relconsole.tui.widgets.journal import JournalPanel
from relconsole.tui.widgets.metrics import ErrorRatePanel, LatencyPanel

__all__ = [
    "CanaryPanel",
    "ErrorRatePanel",
    "FlagsPanel",
    "GatesPanel",
    "JournalPanel",
    "LatencyPanel",
    "ReleaseHeader",
]
