"""The fixed parts of notifications: the keys, who each one is for, the variables a template may
use, and the built-in templates (zh-CN and en) that apply until an admin edits one.

Keys are fixed because each one is tied to an event in the handlers; templates and rules are data.
Built-ins live here rather than in a migration so that a new built-in language or a corrected
wording reaches every installation without a data migration; a stored template (``PUT``) wins
over the built-in of the same key and language, and deleting it restores the built-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Audience = Literal["customer", "agent"]
Recipient = Literal["customer", "assignee", "team_supervisors", "users", "approvers"]
AgentChannel = Literal["email", "wecom", "dingtalk"]

CUSTOMER_RECIPIENTS: tuple[Recipient, ...] = ("customer",)
AGENT_RECIPIENTS: tuple[Recipient, ...] = ("assignee", "team_supervisors", "users")
#: the people an approval or countersign step waits for (the event names them): only the
#: approval request has them, every other agent key would have nobody there
APPROVAL_RECIPIENTS: tuple[Recipient, ...] = ("approvers", *AGENT_RECIPIENTS)
AGENT_CHANNELS: tuple[AgentChannel, ...] = ("email", "wecom", "dingtalk")


@dataclass(frozen=True, slots=True)
class Key:
    key: str
    event_type: str
    audience: Audience
    description: str
    #: the rule as migration 0004 seeds it
    default_enabled: bool
    default_recipients: tuple[Recipient, ...]


KEYS: dict[str, Key] = {k.key: k for k in (
    Key("ticket_received", "ticket.created", "customer",
        "Acknowledgement to the customer with the ticket number (not for tickets an agent created).",
        True, ("customer",)),
    Key("ticket_solved", "ticket.status_changed", "customer",
        "The ticket was solved; replying reopens it.", True, ("customer",)),
    Key("ticket_assigned", "ticket.assigned", "agent",
        "A ticket was assigned to an agent (not when agents take a ticket themselves).", True, ("assignee",)),
    Key("sla_warning", "sla.warning", "agent",
        "An SLA target is close to its due time.", True, ("assignee",)),
    Key("sla_breached", "sla.breached", "agent",
        "An SLA target was missed.", True, ("assignee", "team_supervisors")),
    Key("escalation", "sla.escalation_requested", "agent",
        "An SLA policy escalated the ticket (plus whoever the policy's notify list names).", True,
        ("assignee", "team_supervisors")),
    Key("approval_requested", "ticket.approval_requested", "agent",
        "An approval or countersign step waits for these people's decision (each sequential party in turn).",
        True, ("approvers",)),
    Key("approval_decided", "ticket.approval_decided", "agent",
        "An approval or countersign step was completed or rejected (not told to whoever decided it).", True,
        ("assignee",)),
)}


def allowed_recipients(key: str) -> tuple[Recipient, ...]:
    """The recipients a rule of ``key`` may name."""
    spec = KEYS[key]
    if spec.audience == "customer":
        return CUSTOMER_RECIPIENTS
    return APPROVAL_RECIPIENTS if key == "approval_requested" else AGENT_RECIPIENTS

#: the template languages every key has built in
BUILTIN_LANGUAGES = ("zh-CN", "en")

#: every variable a template may use: top-level name -> its fields (None: a plain value).
#: Values are strings, numbers or null (null renders as nothing). Nothing else is reachable.
VARIABLES: dict[str, frozenset[str] | None] = {
    "ticket": frozenset({"id", "number", "subject", "status", "priority", "channel", "url"}),
    "requester": frozenset({"name", "email"}),
    #: the agent the ticket is assigned to (for ticket_assigned: the new assignee)
    "agent": frozenset({"name"}),
    #: whoever this message goes to (the requester, or the agent being notified)
    "recipient": frozenset({"name"}),
    "team": frozenset({"id", "name"}),
    #: SLA keys: the metric (first_response, resolution, ...), its due time ("2026-11-30 14:00 UTC"),
    #: the warning's fraction of the target, the policy's name
    "sla": frozenset({"metric", "due_at", "fraction", "policy"}),
    #: approval keys: the process step (its key and name in the definition, ``approval`` or
    #: ``countersign``), its rule (all / any / n_of_m with ``n`` / sequential / parallel), when it expires
    #: ("2026-11-30 14:00 UTC"), and for a decision: approve / reject / sign, who decided (a name),
    #: the step's status after it (completed / rejected) and the decider's comment
    "step": frozenset({"key", "name", "kind", "rule", "n", "expires_at", "decision", "decided_by", "status",
                       "comment"}),
    #: the customer portal's address (NOTIFY_PORTAL_URL), or null
    "portal_url": None,
    #: how the customer answers, in the message's language ("Reply to this e-mail ...")
    "reply_hint": None,
    "language": None,
}

#: what the preview endpoint and the save-time check render with
SAMPLE: dict[str, object] = {
    "ticket": {"id": "5b0b6b2e-8f7a-4c52-9d0e-2f1b9c7d4a10", "number": 10042, "subject": "打印机无法连接 / Printer offline",
               "status": "open", "priority": "high", "channel": "email",
               "url": "https://desk.example.com/tickets/5b0b6b2e-8f7a-4c52-9d0e-2f1b9c7d4a10"},
    "requester": {"name": "王芳", "email": "wang.fang@example.com"},
    "agent": {"name": "Li Na"},
    "recipient": {"name": "Li Na"},
    "team": {"id": "0f6c1c1e-3a52-4d7e-9a43-5c2d8b7e6f01", "name": "Support"},
    "sla": {"metric": "first_response", "due_at": "2026-11-30 14:00 UTC", "fraction": 0.75, "policy": "Standard"},
    "step": {"key": "refund_approval", "name": "退款审批 / Refund approval", "kind": "approval", "rule": "any",
             "n": None, "expires_at": "2026-12-02 14:00 UTC", "decision": "approve", "decided_by": "Zhang Wei",
             "status": "completed", "comment": "OK"},
    "portal_url": "https://support.example.com",
    "reply_hint": "Reply to this e-mail to add information to your request.",
    "language": "en",
}

REPLY_HINTS = {
    ("email", "zh-CN"): "直接回复此邮件即可补充信息，请保留主题中的工单编号。",
    ("email", "en"): "Reply to this e-mail to add information to your request; please keep the ticket number in the subject.",
    ("chat", "zh-CN"): "在原会话中回复即可补充信息。",
    ("chat", "en"): "Reply in the same conversation to add information to your request.",
}


@dataclass(frozen=True, slots=True)
class Template:
    subject: str
    body_text: str
    body_html: str


_HTML_FOOT_ZH = '<p style="color:#888;font-size:12px">此邮件由系统自动发送。</p>'
_HTML_FOOT_EN = '<p style="color:#888;font-size:12px">This message was sent automatically.</p>'

BUILTIN: dict[tuple[str, str], Template] = {
    ("ticket_received", "zh-CN"): Template(
        subject="[#{{ ticket.number }}] 我们已收到您的请求：{{ ticket.subject }}",
        body_text=(
            "{{ requester.name|default('您好', true) }}，\n\n"
            "我们已收到您的请求，工单编号为 #{{ ticket.number }}。\n"
            "主题：{{ ticket.subject }}\n\n"
            "客服人员会尽快回复您。{{ reply_hint }}\n"
            "{% if portal_url %}您也可以在 {{ portal_url }} 查看进度。\n{% endif %}"
            "\n此邮件由系统自动发送。\n"),
        body_html=(
            "<p>{{ requester.name|default('您好', true) }}，</p>"
            "<p>我们已收到您的请求，工单编号为 <strong>#{{ ticket.number }}</strong>。<br>主题：{{ ticket.subject }}</p>"
            "<p>客服人员会尽快回复您。{{ reply_hint }}</p>"
            "{% if portal_url %}<p>您也可以在 <a href=\"{{ portal_url }}\">{{ portal_url }}</a> 查看进度。</p>{% endif %}"
            + _HTML_FOOT_ZH)),
    ("ticket_received", "en"): Template(
        subject="[#{{ ticket.number }}] We received your request: {{ ticket.subject }}",
        body_text=(
            "Hello {{ requester.name|default('there', true) }},\n\n"
            "We received your request and opened ticket #{{ ticket.number }}.\n"
            "Subject: {{ ticket.subject }}\n\n"
            "An agent will get back to you soon. {{ reply_hint }}\n"
            "{% if portal_url %}You can also follow it at {{ portal_url }}.\n{% endif %}"
            "\nThis message was sent automatically.\n"),
        body_html=(
            "<p>Hello {{ requester.name|default('there', true) }},</p>"
            "<p>We received your request and opened ticket <strong>#{{ ticket.number }}</strong>.<br>"
            "Subject: {{ ticket.subject }}</p>"
            "<p>An agent will get back to you soon. {{ reply_hint }}</p>"
            "{% if portal_url %}<p>You can also follow it at <a href=\"{{ portal_url }}\">{{ portal_url }}</a>.</p>{% endif %}"
            + _HTML_FOOT_EN)),
    ("ticket_solved", "zh-CN"): Template(
        subject="[#{{ ticket.number }}] 您的请求已解决：{{ ticket.subject }}",
        body_text=(
            "{{ requester.name|default('您好', true) }}，\n\n"
            "您的工单 #{{ ticket.number }}（{{ ticket.subject }}）已标记为已解决。\n"
            "如果问题仍未解决，直接回复即可重新打开工单。\n\n此邮件由系统自动发送。\n"),
        body_html=(
            "<p>{{ requester.name|default('您好', true) }}，</p>"
            "<p>您的工单 <strong>#{{ ticket.number }}</strong>（{{ ticket.subject }}）已标记为已解决。</p>"
            "<p>如果问题仍未解决，直接回复即可重新打开工单。</p>" + _HTML_FOOT_ZH)),
    ("ticket_solved", "en"): Template(
        subject="[#{{ ticket.number }}] Your request was solved: {{ ticket.subject }}",
        body_text=(
            "Hello {{ requester.name|default('there', true) }},\n\n"
            "Your ticket #{{ ticket.number }} ({{ ticket.subject }}) was marked as solved.\n"
            "If anything is still wrong, just reply and the ticket reopens.\n\n"
            "This message was sent automatically.\n"),
        body_html=(
            "<p>Hello {{ requester.name|default('there', true) }},</p>"
            "<p>Your ticket <strong>#{{ ticket.number }}</strong> ({{ ticket.subject }}) was marked as solved.</p>"
            "<p>If anything is still wrong, just reply and the ticket reopens.</p>" + _HTML_FOOT_EN)),
    ("ticket_assigned", "zh-CN"): Template(
        subject="[#{{ ticket.number }}] 工单已分配给您：{{ ticket.subject }}",
        body_text=(
            "{{ recipient.name|default('您好', true) }}，\n\n"
            "工单 #{{ ticket.number }} 已分配给您。\n"
            "主题：{{ ticket.subject }}\n优先级：{{ ticket.priority }}\n"
            "请求人：{{ requester.name|default(requester.email, true) }}\n"
            "{% if ticket.url %}{{ ticket.url }}\n{% endif %}"),
        body_html=(
            "<p>{{ recipient.name|default('您好', true) }}，</p>"
            "<p>工单 <strong>#{{ ticket.number }}</strong> 已分配给您。</p>"
            "<p>主题：{{ ticket.subject }}<br>优先级：{{ ticket.priority }}<br>"
            "请求人：{{ requester.name|default(requester.email, true) }}</p>"
            "{% if ticket.url %}<p><a href=\"{{ ticket.url }}\">打开工单</a></p>{% endif %}")),
    ("ticket_assigned", "en"): Template(
        subject="[#{{ ticket.number }}] Assigned to you: {{ ticket.subject }}",
        body_text=(
            "Hello {{ recipient.name|default('there', true) }},\n\n"
            "Ticket #{{ ticket.number }} was assigned to you.\n"
            "Subject: {{ ticket.subject }}\nPriority: {{ ticket.priority }}\n"
            "Requester: {{ requester.name|default(requester.email, true) }}\n"
            "{% if ticket.url %}{{ ticket.url }}\n{% endif %}"),
        body_html=(
            "<p>Hello {{ recipient.name|default('there', true) }},</p>"
            "<p>Ticket <strong>#{{ ticket.number }}</strong> was assigned to you.</p>"
            "<p>Subject: {{ ticket.subject }}<br>Priority: {{ ticket.priority }}<br>"
            "Requester: {{ requester.name|default(requester.email, true) }}</p>"
            "{% if ticket.url %}<p><a href=\"{{ ticket.url }}\">Open the ticket</a></p>{% endif %}")),
    ("sla_warning", "zh-CN"): Template(
        subject="[#{{ ticket.number }}] SLA 即将到期：{{ ticket.subject }}",
        body_text=(
            "工单 #{{ ticket.number }}（{{ ticket.subject }}）的 SLA 指标 {{ sla.metric }} 将于 {{ sla.due_at }} 到期。\n"
            "处理人：{{ agent.name|default('未分配', true) }}\n"
            "{% if ticket.url %}{{ ticket.url }}\n{% endif %}"),
        body_html=(
            "<p>工单 <strong>#{{ ticket.number }}</strong>（{{ ticket.subject }}）的 SLA 指标 "
            "<strong>{{ sla.metric }}</strong> 将于 <strong>{{ sla.due_at }}</strong> 到期。</p>"
            "<p>处理人：{{ agent.name|default('未分配', true) }}</p>"
            "{% if ticket.url %}<p><a href=\"{{ ticket.url }}\">打开工单</a></p>{% endif %}")),
    ("sla_warning", "en"): Template(
        subject="[#{{ ticket.number }}] SLA due soon: {{ ticket.subject }}",
        body_text=(
            "The {{ sla.metric }} target of ticket #{{ ticket.number }} ({{ ticket.subject }}) is due at {{ sla.due_at }}.\n"
            "Assignee: {{ agent.name|default('nobody', true) }}\n"
            "{% if ticket.url %}{{ ticket.url }}\n{% endif %}"),
        body_html=(
            "<p>The <strong>{{ sla.metric }}</strong> target of ticket <strong>#{{ ticket.number }}</strong> "
            "({{ ticket.subject }}) is due at <strong>{{ sla.due_at }}</strong>.</p>"
            "<p>Assignee: {{ agent.name|default('nobody', true) }}</p>"
            "{% if ticket.url %}<p><a href=\"{{ ticket.url }}\">Open the ticket</a></p>{% endif %}")),
    ("sla_breached", "zh-CN"): Template(
        subject="[#{{ ticket.number }}] SLA 已超时：{{ ticket.subject }}",
        body_text=(
            "工单 #{{ ticket.number }}（{{ ticket.subject }}）的 SLA 指标 {{ sla.metric }} 已于 {{ sla.due_at }} 超时。\n"
            "处理人：{{ agent.name|default('未分配', true) }}\n"
            "{% if ticket.url %}{{ ticket.url }}\n{% endif %}"),
        body_html=(
            "<p>工单 <strong>#{{ ticket.number }}</strong>（{{ ticket.subject }}）的 SLA 指标 "
            "<strong>{{ sla.metric }}</strong> 已于 <strong>{{ sla.due_at }}</strong> 超时。</p>"
            "<p>处理人：{{ agent.name|default('未分配', true) }}</p>"
            "{% if ticket.url %}<p><a href=\"{{ ticket.url }}\">打开工单</a></p>{% endif %}")),
    ("sla_breached", "en"): Template(
        subject="[#{{ ticket.number }}] SLA breached: {{ ticket.subject }}",
        body_text=(
            "The {{ sla.metric }} target of ticket #{{ ticket.number }} ({{ ticket.subject }}) was missed at {{ sla.due_at }}.\n"
            "Assignee: {{ agent.name|default('nobody', true) }}\n"
            "{% if ticket.url %}{{ ticket.url }}\n{% endif %}"),
        body_html=(
            "<p>The <strong>{{ sla.metric }}</strong> target of ticket <strong>#{{ ticket.number }}</strong> "
            "({{ ticket.subject }}) was missed at <strong>{{ sla.due_at }}</strong>.</p>"
            "<p>Assignee: {{ agent.name|default('nobody', true) }}</p>"
            "{% if ticket.url %}<p><a href=\"{{ ticket.url }}\">Open the ticket</a></p>{% endif %}")),
    ("escalation", "zh-CN"): Template(
        subject="[#{{ ticket.number }}] 工单已升级：{{ ticket.subject }}",
        body_text=(
            "工单 #{{ ticket.number }}（{{ ticket.subject }}）因 SLA 指标 {{ sla.metric }} 超时已升级，请尽快处理。\n"
            "优先级：{{ ticket.priority }}\n处理人：{{ agent.name|default('未分配', true) }}\n"
            "{% if ticket.url %}{{ ticket.url }}\n{% endif %}"),
        body_html=(
            "<p>工单 <strong>#{{ ticket.number }}</strong>（{{ ticket.subject }}）因 SLA 指标 "
            "<strong>{{ sla.metric }}</strong> 超时已升级，请尽快处理。</p>"
            "<p>优先级：{{ ticket.priority }}<br>处理人：{{ agent.name|default('未分配', true) }}</p>"
            "{% if ticket.url %}<p><a href=\"{{ ticket.url }}\">打开工单</a></p>{% endif %}")),
    ("escalation", "en"): Template(
        subject="[#{{ ticket.number }}] Escalated: {{ ticket.subject }}",
        body_text=(
            "Ticket #{{ ticket.number }} ({{ ticket.subject }}) was escalated: its {{ sla.metric }} target was missed.\n"
            "Priority: {{ ticket.priority }}\nAssignee: {{ agent.name|default('nobody', true) }}\n"
            "{% if ticket.url %}{{ ticket.url }}\n{% endif %}"),
        body_html=(
            "<p>Ticket <strong>#{{ ticket.number }}</strong> ({{ ticket.subject }}) was escalated: its "
            "<strong>{{ sla.metric }}</strong> target was missed.</p>"
            "<p>Priority: {{ ticket.priority }}<br>Assignee: {{ agent.name|default('nobody', true) }}</p>"
            "{% if ticket.url %}<p><a href=\"{{ ticket.url }}\">Open the ticket</a></p>{% endif %}")),
    ("approval_requested", "zh-CN"): Template(
        subject="[#{{ ticket.number }}] {% if step.kind == 'countersign' %}待您会签{% else %}待您审批{% endif %}："
                "{{ step.name|default(step.key, true) }}",
        body_text=(
            "{{ recipient.name|default('您好', true) }}，\n\n"
            "工单 #{{ ticket.number }}（{{ ticket.subject }}）的步骤「{{ step.name|default(step.key, true) }}」"
            "{% if step.kind == 'countersign' %}需要您会签{% else %}需要您审批{% endif %}。\n"
            "{% if step.rule == 'all' %}规则：所有审批人均须同意。\n"
            "{% elif step.rule == 'any' %}规则：任一审批人同意即可。\n"
            "{% elif step.rule == 'n_of_m' %}规则：须有 {{ step.n }} 位审批人同意。\n"
            "{% elif step.rule == 'sequential' %}规则：按顺序依次会签，现在轮到您。\n"
            "{% elif step.rule == 'parallel' %}规则：各方均须会签。\n{% endif %}"
            "{% if step.expires_at %}截止时间：{{ step.expires_at }}\n{% endif %}"
            "优先级：{{ ticket.priority }}\n"
            "{% if ticket.url %}请在工单中作出决定：\n{{ ticket.url }}\n{% else %}请在客服工作台的“待我审批”中作出决定。\n{% endif %}"),
        body_html=(
            "<p>{{ recipient.name|default('您好', true) }}，</p>"
            "<p>工单 <strong>#{{ ticket.number }}</strong>（{{ ticket.subject }}）的步骤"
            "「<strong>{{ step.name|default(step.key, true) }}</strong>」"
            "{% if step.kind == 'countersign' %}需要您会签{% else %}需要您审批{% endif %}。</p>"
            "<p>{% if step.rule %}规则：{{ step.rule }}<br>{% endif %}"
            "{% if step.expires_at %}截止时间：{{ step.expires_at }}<br>{% endif %}优先级：{{ ticket.priority }}</p>"
            "{% if ticket.url %}<p><a href=\"{{ ticket.url }}\">打开工单并作出决定</a></p>"
            "{% else %}<p>请在客服工作台的“待我审批”中作出决定。</p>{% endif %}")),
    ("approval_requested", "en"): Template(
        subject="[#{{ ticket.number }}] {% if step.kind == 'countersign' %}Signature{% else %}Approval{% endif %} "
                "needed: {{ step.name|default(step.key, true) }}",
        body_text=(
            "Hello {{ recipient.name|default('there', true) }},\n\n"
            "The step \"{{ step.name|default(step.key, true) }}\" of ticket #{{ ticket.number }} ({{ ticket.subject }}) "
            "{% if step.kind == 'countersign' %}needs your signature{% else %}needs your approval{% endif %}.\n"
            "{% if step.rule == 'all' %}Rule: every approver must approve.\n"
            "{% elif step.rule == 'any' %}Rule: one approval is enough.\n"
            "{% elif step.rule == 'n_of_m' %}Rule: {{ step.n }} approvers must approve.\n"
            "{% elif step.rule == 'sequential' %}Rule: the parties sign in order; it is your turn.\n"
            "{% elif step.rule == 'parallel' %}Rule: every party must sign.\n{% endif %}"
            "{% if step.expires_at %}Decide by: {{ step.expires_at }}\n{% endif %}"
            "Priority: {{ ticket.priority }}\n"
            "{% if ticket.url %}Decide on the ticket:\n{{ ticket.url }}\n{% else %}Decide from your approval queue in the agent desk.\n{% endif %}"),
        body_html=(
            "<p>Hello {{ recipient.name|default('there', true) }},</p>"
            "<p>The step <strong>{{ step.name|default(step.key, true) }}</strong> of ticket "
            "<strong>#{{ ticket.number }}</strong> ({{ ticket.subject }}) "
            "{% if step.kind == 'countersign' %}needs your signature{% else %}needs your approval{% endif %}.</p>"
            "<p>{% if step.rule %}Rule: {{ step.rule }}<br>{% endif %}"
            "{% if step.expires_at %}Decide by: {{ step.expires_at }}<br>{% endif %}Priority: {{ ticket.priority }}</p>"
            "{% if ticket.url %}<p><a href=\"{{ ticket.url }}\">Open the ticket and decide</a></p>"
            "{% else %}<p>Decide from your approval queue in the agent desk.</p>{% endif %}")),
    ("approval_decided", "zh-CN"): Template(
        subject="[#{{ ticket.number }}] {% if step.status == 'rejected' %}已驳回{% else %}已通过{% endif %}："
                "{{ step.name|default(step.key, true) }}",
        body_text=(
            "{{ recipient.name|default('您好', true) }}，\n\n"
            "工单 #{{ ticket.number }}（{{ ticket.subject }}）的步骤「{{ step.name|default(step.key, true) }}」"
            "{% if step.status == 'rejected' %}已被驳回{% else %}已完成{% endif %}"
            "{% if step.decided_by %}（由 {{ step.decided_by }} 作出最终决定）{% endif %}。\n"
            "{% if step.comment %}意见：{{ step.comment }}\n{% endif %}"
            "{% if ticket.url %}{{ ticket.url }}\n{% endif %}"),
        body_html=(
            "<p>{{ recipient.name|default('您好', true) }}，</p>"
            "<p>工单 <strong>#{{ ticket.number }}</strong>（{{ ticket.subject }}）的步骤"
            "「<strong>{{ step.name|default(step.key, true) }}</strong>」"
            "{% if step.status == 'rejected' %}已被驳回{% else %}已完成{% endif %}"
            "{% if step.decided_by %}（由 {{ step.decided_by }} 作出最终决定）{% endif %}。</p>"
            "{% if step.comment %}<p>意见：{{ step.comment }}</p>{% endif %}"
            "{% if ticket.url %}<p><a href=\"{{ ticket.url }}\">打开工单</a></p>{% endif %}")),
    ("approval_decided", "en"): Template(
        subject="[#{{ ticket.number }}] {% if step.status == 'rejected' %}Rejected{% else %}Approved{% endif %}: "
                "{{ step.name|default(step.key, true) }}",
        body_text=(
            "Hello {{ recipient.name|default('there', true) }},\n\n"
            "The step \"{{ step.name|default(step.key, true) }}\" of ticket #{{ ticket.number }} ({{ ticket.subject }}) "
            "{% if step.status == 'rejected' %}was rejected{% else %}was completed{% endif %}"
            "{% if step.decided_by %} (final decision by {{ step.decided_by }}){% endif %}.\n"
            "{% if step.comment %}Comment: {{ step.comment }}\n{% endif %}"
            "{% if ticket.url %}{{ ticket.url }}\n{% endif %}"),
        body_html=(
            "<p>Hello {{ recipient.name|default('there', true) }},</p>"
            "<p>The step <strong>{{ step.name|default(step.key, true) }}</strong> of ticket "
            "<strong>#{{ ticket.number }}</strong> ({{ ticket.subject }}) "
            "{% if step.status == 'rejected' %}was rejected{% else %}was completed{% endif %}"
            "{% if step.decided_by %} (final decision by {{ step.decided_by }}){% endif %}.</p>"
            "{% if step.comment %}<p>Comment: {{ step.comment }}</p>{% endif %}"
            "{% if ticket.url %}<p><a href=\"{{ ticket.url }}\">Open the ticket</a></p>{% endif %}")),
}
