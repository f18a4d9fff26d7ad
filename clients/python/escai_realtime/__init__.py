"""ESCAI Realtime for Python: publish what AI agents think, and watch it live.

Producers: ``Publisher`` (sync) and ``AsyncPublisher`` (asyncio).
Watchers: ``watch()`` (async iterator) and ``watch_sync()`` (callback).
Models: TypedDicts in ``escai_realtime.models``.
"""
from __future__ import annotations

from ._compat import IMPLEMENTATION as WEBSOCKETS_IMPLEMENTATION
from ._compat import VERSION as WEBSOCKETS_VERSION
from .codes import CLOSE_CODES, ERROR_CODES, close_allows_reconnect, error_is_retryable
from .errors import (
    EscaiError,
    PublishError,
    PublisherClosed,
    QueueFull,
    RecoveryFailedError,
    SubscriptionRefused,
    TerminalError,
    ValidationError,
)
from .models import (
    AgentStatusChange,
    BehavioralPattern,
    BeliefState,
    DeliveredEvent,
    EpistemicState,
    EpistemicUpdate,
    GoalState,
    KnowledgeState,
    PatternAlert,
    PredictionResult,
    PredictionUpdate,
    PublishedRef,
    PublishEvent,
    RecoveryFailed,
    StreamPosition,
    SubscriptionRevoked,
    SystemAlert,
    UserNotification,
    WatchItem,
)
from .publisher import (
    AsyncPublisher,
    Publisher,
    agent_status_event,
    check_event,
    epistemic_update_event,
    pattern_alert_event,
    prediction_update_event,
    system_alert_event,
    user_notification_event,
)
from .watcher import Subscription, Watcher, watch, watch_sync

__version__ = "0.1.0"

__all__ = [
    "AgentStatusChange",
    "AsyncPublisher",
    "BehavioralPattern",
    "BeliefState",
    "CLOSE_CODES",
    "DeliveredEvent",
    "ERROR_CODES",
    "EpistemicState",
    "EpistemicUpdate",
    "EscaiError",
    "GoalState",
    "KnowledgeState",
    "PatternAlert",
    "PredictionResult",
    "PredictionUpdate",
    "PublishError",
    "PublishEvent",
    "PublishedRef",
    "Publisher",
    "PublisherClosed",
    "QueueFull",
    "RecoveryFailed",
    "RecoveryFailedError",
    "StreamPosition",
    "Subscription",
    "SubscriptionRefused",
    "SubscriptionRevoked",
    "SystemAlert",
    "TerminalError",
    "UserNotification",
    "ValidationError",
    "WEBSOCKETS_IMPLEMENTATION",
    "WEBSOCKETS_VERSION",
    "WatchItem",
    "Watcher",
    "agent_status_event",
    "check_event",
    "close_allows_reconnect",
    "epistemic_update_event",
    "error_is_retryable",
    "pattern_alert_event",
    "prediction_update_event",
    "system_alert_event",
    "user_notification_event",
    "watch",
    "watch_sync",
]
