"""The console's pages, in the order of the console issue: the one list the web shell renders."""

from __future__ import annotations

from bot.analytics.console.delivery import delivery
from bot.analytics.console.funnel import funnel
from bot.analytics.console.gain import gain
from bot.analytics.console.overview import overview
from bot.analytics.console.questions import questions
from bot.analytics.console.survey import survey
from bot.analytics.console.who import who
from bot.analytics.figures import N_, Page

PAGES: tuple[Page, ...] = (
    Page("overview", N_("Overview"), overview),
    Page("funnel", N_("Funnel"), funnel),
    Page("questions", N_("Questions"), questions),
    Page("gain", N_("Learning gain"), gain),
    Page("survey", N_("Survey"), survey),
    Page("who", N_("Who"), who),
    Page("delivery", N_("Delivery"), delivery),
)
