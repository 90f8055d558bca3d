"""The service layer's one exception tree; the API layer translates it once, at the edge.

ServiceError
├── Overloaded        the sequencer's bounded queue is full: retry later (HTTP 503/429)
├── NotRunning        the sequencer is not started, or is stopping
├── StoreFailed       a batch could not be committed: the outcome of every command not yet
│                     acknowledged is unknown, and the process must restart (it replays the
│                     store, which holds exactly the committed commands)
├── EngineFailed      the core raised (a bug): the sequencer stopped before logging it
└── SubscriberDropped a market-data subscriber fell too far behind and was cut off
"""


class ServiceError(Exception):
    """Base of every error the service layer raises on purpose."""


class Overloaded(ServiceError):
    """The command queue is at its limit; the command was not accepted."""


class NotRunning(ServiceError):
    """The sequencer is not accepting commands (not started, stopping or stopped)."""


class InvalidCommand(ServiceError):
    """The command does not survive encoding and decoding unchanged, so it cannot be logged."""


class StoreFailed(ServiceError):
    """A commit failed; the in-memory state is ahead of the store and must be rebuilt."""


class EngineFailed(ServiceError):
    """Applying a command raised inside the core; that command was not logged."""


class SubscriberDropped(ServiceError):
    """The subscriber's bounded queue overflowed; it missed outcomes and must resubscribe."""
