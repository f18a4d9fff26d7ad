"""The ESCAI data models and the seven event types, as TypedDicts.

They mirror ``src/protocol/events.ts`` (the server's schemas) and
``docs/PROTOCOL.md``. TypedDicts rather than dataclasses: an event is sent and
received as the JSON object it is, unknown fields kept as sent (the server
keeps them too), and a type checker still checks every known field. Every
model field is optional (``total=False``), as on the server; the envelope
fields a producer must give are marked ``Required``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, TypedDict, Union, get_args

Timestamp = Union[str, float, int]
"""ISO-8601 text or a number (seconds), as the producer chooses: the server keeps it as sent."""

BeliefType = Literal["factual", "procedural", "conditional", "predictive"]
GoalStatus = Literal["active", "completed", "failed", "suspended"]
PatternType = Literal["sequential", "temporal", "causal", "feedback_loop"]
RiskLevel = Literal["low", "medium", "high", "critical"]
Severity = Literal["debug", "info", "low", "medium", "warning", "high", "error", "critical"]

EventType = Literal[
    "epistemic_update",
    "pattern_alert",
    "prediction_update",
    "system_alert",
    "agent_status_change",
    "user_notification",
    "agent_activity",
]
SubscriptionType = Literal["epistemic_updates", "pattern_alerts", "prediction_updates", "agent_status", "system_alerts", "agent_activity"]

EVENT_TYPES: tuple[str, ...] = get_args(EventType)
SUBSCRIPTION_TYPES: dict[str, str] = {
    "epistemic_updates": "epistemic_update",
    "pattern_alerts": "pattern_alert",
    "prediction_updates": "prediction_update",
    "system_alerts": "system_alert",
    "agent_status": "agent_status_change",
    "agent_activity": "agent_activity",
}
SEVERITIES: tuple[str, ...] = get_args(Severity)


# ---- the ESCAI models (the `data` of events) ---------------------------------


class BeliefState(TypedDict, total=False):
    content: str
    belief_type: BeliefType
    confidence: float  # 0..1
    evidence: List[Any]
    source: Optional[str]
    timestamp: Optional[Timestamp]


class KnowledgeState(TypedDict, total=False):
    facts: List[Any]
    confidence: float  # 0..1
    source: Optional[str]


class GoalState(TypedDict, total=False):
    description: str
    status: GoalStatus
    priority: int  # 1..10
    primary_goals: List[Any]
    secondary_goals: List[Any]
    completion_status: Dict[str, Any]


class EpistemicState(TypedDict, total=False):
    agent_id: str
    timestamp: Optional[Timestamp]
    belief_states: List[BeliefState]
    knowledge_state: Optional[KnowledgeState]
    goal_states: List[GoalState]
    confidence_level: float  # 0..1
    uncertainty_score: float  # 0..1


class ExecutionSequence(TypedDict, total=False):
    sequence_id: str
    agent_id: str
    steps: List[Any]
    start_time: Optional[Timestamp]
    end_time: Optional[Timestamp]
    success: Optional[bool]
    error_message: Optional[str]
    actions: List[Any]


class BehavioralPattern(TypedDict, total=False):
    pattern_id: str
    pattern_name: str
    pattern_type: PatternType
    description: str
    execution_sequences: List[ExecutionSequence]
    frequency: float  # >= 0
    success_rate: float  # 0..1
    average_duration: float  # >= 0
    common_triggers: List[Any]
    failure_modes: List[Any]
    statistical_significance: float


class _ConfidenceIntervalBounds(TypedDict):
    lower_bound: float
    upper_bound: float


class ConfidenceInterval(_ConfidenceIntervalBounds, total=False):
    confidence_level: float


class PredictionResult(TypedDict, total=False):
    agent_id: str
    prediction_type: str
    predicted_value: Any
    confidence: float  # 0..1
    uncertainty: float  # 0..1
    risk_factors: List[Any]
    recommended_actions: List[Any]
    model_used: str
    timestamp: Optional[Timestamp]
    risk_level: RiskLevel
    interventions: List[Any]
    confidence_interval: Optional[ConfidenceInterval]
    feature_importance: Dict[str, float]


ActivityKind = Literal["agent", "llm", "tool", "chain", "retriever", "embedding", "reranker", "guardrail", "evaluator", "handoff", "workflow", "plan", "other"]
ActivityState = Literal["running", "ok", "error"]


class TokenUsage(TypedDict, total=False):
    input: int
    output: int
    total: int
    cached_input: int
    reasoning: int


class _ActivityRequired(TypedDict):
    span_id: str
    trace_id: str
    kind: ActivityKind
    name: str
    state: ActivityState  # running: started, not ended; ok / error: ended (final)
    started_at: str


class Activity(_ActivityRequired, total=False):
    """One step of an agent (a model or tool call, its own run): the ``data`` of an ``agent_activity`` event."""

    parent_span_id: Optional[str]
    inferred: bool  # running because a child arrived before it ended
    ended_at: str
    duration_ms: float
    operation: str
    model: str
    provider: str
    tool: str
    arguments_digest: str
    tokens: TokenUsage
    finish_reasons: List[str]
    error: Dict[str, Any]
    conversation_id: str
    source: str
    convention: str
    input: str
    output: str


# ---- what a producer publishes -----------------------------------------------


class _Keyed(TypedDict, total=False):
    idempotency_key: str  # <= 256 chars; the publisher adds one when absent


class _EpistemicUpdateRequired(TypedDict):
    type: Literal["epistemic_update"]
    agent_id: str
    data: EpistemicState


class EpistemicUpdateInput(_EpistemicUpdateRequired, _Keyed, total=False):
    pass


class _PatternAlertRequired(TypedDict):
    type: Literal["pattern_alert"]
    agent_id: str
    data: BehavioralPattern


class PatternAlertInput(_PatternAlertRequired, _Keyed, total=False):
    alert_type: str  # default pattern_detected
    severity: Severity  # default info


class _PredictionUpdateRequired(TypedDict):
    type: Literal["prediction_update"]
    agent_id: str
    data: PredictionResult


class PredictionUpdateInput(_PredictionUpdateRequired, _Keyed, total=False):
    pass


class _SystemAlertRequired(TypedDict):
    type: Literal["system_alert"]
    alert_type: str
    message: str


class SystemAlertInput(_SystemAlertRequired, _Keyed, total=False):
    severity: Severity  # default info
    metadata: Dict[str, Any]


class _AgentStatusChangeRequired(TypedDict):
    type: Literal["agent_status_change"]
    agent_id: str
    status: str


class AgentStatusChangeInput(_AgentStatusChangeRequired, _Keyed, total=False):
    metadata: Dict[str, Any]


class _UserNotificationRequired(TypedDict):
    type: Literal["user_notification"]
    user_id: str
    notification_type: str
    message: str


class UserNotificationInput(_UserNotificationRequired, _Keyed, total=False):
    data: Dict[str, Any]

class _AgentActivityRequired(TypedDict):
    type: Literal["agent_activity"]
    agent_id: str
    data: Activity


class AgentActivityInput(_AgentActivityRequired, _Keyed, total=False):
    pass


PublishEvent = Union[
    AgentActivityInput,
    EpistemicUpdateInput,
    PatternAlertInput,
    PredictionUpdateInput,
    SystemAlertInput,
    AgentStatusChangeInput,
    UserNotificationInput,
]


# ---- what a watcher receives -------------------------------------------------


class _Delivered(TypedDict):
    event_id: str
    timestamp: str  # the server's publish time (ISO-8601 UTC)
    offset: int  # position in the event's stream
    epoch: str  # the stream's lifetime


class EpistemicUpdate(_Delivered):
    type: Literal["epistemic_update"]
    agent_id: str
    data: EpistemicState


class PatternAlert(_Delivered):
    type: Literal["pattern_alert"]
    agent_id: str
    alert_type: str
    severity: Severity
    data: BehavioralPattern


class PredictionUpdate(_Delivered):
    type: Literal["prediction_update"]
    agent_id: str
    data: PredictionResult


class SystemAlert(_Delivered):
    type: Literal["system_alert"]
    alert_type: str
    message: str
    severity: Severity
    metadata: Dict[str, Any]


class AgentStatusChange(_Delivered):
    type: Literal["agent_status_change"]
    agent_id: str
    status: str
    metadata: Dict[str, Any]


class UserNotification(_Delivered):
    type: Literal["user_notification"]
    notification_type: str
    message: str
    data: Dict[str, Any]


class AgentActivity(_Delivered):
    type: Literal["agent_activity"]
    agent_id: str
    data: Activity


DeliveredEvent = Union[EpistemicUpdate, PatternAlert, PredictionUpdate, SystemAlert, AgentStatusChange, UserNotification, AgentActivity]


class SubscriptionInfo(TypedDict):
    type: SubscriptionType
    agent_id: Optional[str]
    filters: Optional[Dict[str, Any]]


class RecoveryFailed(TypedDict):
    """A marked event the watcher yields: events of ``subscription`` were missed and cannot be replayed."""

    type: Literal["recovery_failed"]
    subscription: SubscriptionInfo
    reason: str


class SubscriptionRevoked(TypedDict):
    """A marked event the watcher yields: a refreshed token no longer allows ``subscription``; it is dropped."""

    type: Literal["subscription_revoked"]
    subscription: SubscriptionInfo
    reason: str


Notice = Union[RecoveryFailed, SubscriptionRevoked]
WatchItem = Union[DeliveredEvent, Notice]
"""What ``watch`` yields: delivered events, and (marked by their ``type``) recovery_failed / subscription_revoked notices."""


class StreamPosition(TypedDict):
    offset: int
    epoch: str


class _PublishedRefRequired(TypedDict):
    event_id: str
    offset: int
    epoch: str


class PublishedRef(_PublishedRefRequired, total=False):
    """One accepted event, as POST /api/v1/events answers: its id and position; ``duplicate`` for a repeated idempotency key."""

    duplicate: bool
