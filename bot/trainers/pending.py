"""`learnbot outbox pending`: what waits in the outbox and why, in the trainer's language.

Also the words a stalled push uses for the same thing. Learners appear by keyed pseudonym;
a trainer sees the deliveries of their own cohorts, an admin every delivery.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from bot.analytics.pending import PendingGroup, Reason
from bot.channels.configured import needed_settings
from bot.config import Settings
from bot.trainers.push import rate_of
from bot.trainers.text import CliUi, Said, format_eta

SERVE = "learnbot serve"
STUCK_SECONDS = 120.0  # due this long, and well past its ETA: nobody is sending it


def _seconds(later: datetime | None, now: datetime) -> float:
    return 0.0 if later is None else max((later - now).total_seconds(), 0.0)


def reason_line(
    ui: CliUi, group: PendingGroup, now: datetime, settings: Settings, ahead: int = 0
) -> Said:
    """One line for a group: how many wait, why, and when they go if anyone knows."""
    n = group.count
    reason = group.reason
    if reason is Reason.NOT_CONFIGURED:
        return ui.ngettext(
            "%(count)s waits: the channel is not configured (set %(settings)s, then restart "
            "%(command)s)",
            "%(count)s wait: the channel is not configured (set %(settings)s, then restart "
            "%(command)s)",
            n,
            count=n,
            settings=needed_settings(group.channel) or "-",
            command=SERVE,
        )
    if reason is Reason.NO_TEMPLATE:
        return ui.ngettext(
            "%(count)s waits: no WhatsApp template for the learner's language; "
            "it goes when the learner writes",
            "%(count)s wait: no WhatsApp template for the learners' language; "
            "each goes when its learner writes",
            n,
            count=n,
        )
    if reason is Reason.WHATSAPP_REPLY:
        return ui.ngettext(
            "%(count)s waits for the learner's reply to the WhatsApp template (24-hour window)",
            "%(count)s wait for the learners' replies to the WhatsApp template (24-hour window)",
            n,
            count=n,
        )
    eta = format_eta(ui, _seconds(group.first_at, now))
    if reason is Reason.LATER:
        return ui.ngettext(
            "%(count)s scheduled for later (a set time or quiet hours): the next in %(eta)s",
            "%(count)s scheduled for later (a set time or quiet hours): the next in %(eta)s",
            n,
            count=n,
            eta=eta,
        )
    if reason is Reason.RATE_LIMITED:
        return ui.ngettext(
            "%(count)s rate-limited by the provider: next try in %(eta)s",
            "%(count)s rate-limited by the provider: next try in %(eta)s",
            n,
            count=n,
            eta=eta,
        )
    if reason is Reason.RETRYING:
        return ui.ngettext(
            "%(count)s retrying after error %(error)s: next try in %(eta)s",
            "%(count)s retrying after error %(error)s: next try in %(eta)s",
            n,
            count=n,
            error=group.error or "-",
            eta=eta,
        )
    if reason is Reason.SENDING:
        return ui.ngettext("%(count)s being sent now", "%(count)s being sent now", n, count=n)
    rate = rate_of(group.channel, settings)
    in_line = (ahead + n) / rate if rate else 0.0
    waited = (now - group.first_at).total_seconds() if group.first_at else 0.0
    line = ui.ngettext(
        "%(count)s due, in line at the channel's rate (about %(eta)s); the oldest waiting "
        "for %(waited)s",
        "%(count)s due, in line at the channel's rate (about %(eta)s); the oldest waiting "
        "for %(waited)s",
        n,
        count=n,
        eta=format_eta(ui, in_line),
        waited=format_eta(ui, max(waited, 0.0)),
    )
    if waited > max(STUCK_SECONDS, 2 * in_line):
        line = Said(
            line
            + "\n    "
            + ui.gettext(
                "nothing is sending them: is %(command)s running with this channel configured?",
                command=SERVE,
            )
        )
    return line


def describe(
    ui: CliUi,
    groups: Sequence[PendingGroup],
    now: datetime,
    settings: Settings,
    *,
    rows: int = 0,
    indent: str = "",
) -> Iterator[str]:
    """Lines for `groups`: a heading per channel, a line per reason, up to `rows` examples."""
    channels: dict[str, list[PendingGroup]] = {}
    for group in groups:
        channels.setdefault(group.channel, []).append(group)
    for channel, found in channels.items():
        total = sum(group.count for group in found)
        yield indent + ui.ngettext(
            "%(channel)s: %(count)s delivery not sent yet",
            "%(channel)s: %(count)s deliveries not sent yet",
            total,
            channel=channel,
            count=total,
        )
        ahead = 0
        for group in found:
            yield f"{indent}  " + reason_line(ui, group, now, settings, ahead)
            if group.reason in (Reason.DUE, Reason.SENDING):
                ahead += group.count
            for row in group.rows[:rows]:
                yield f"{indent}    {row.id}\t{row.learner}\t{row.lesson_id}\t{row.kind}"
            hidden = group.count - rows
            if rows and hidden > 0:
                yield f"{indent}    " + ui.ngettext(
                    "and %(count)s more (%(option)s lists them all)",
                    "and %(count)s more (%(option)s lists them all)",
                    hidden,
                    count=hidden,
                    option="--all",
                )
