"""The verbs, activity types and extension IRIs our statements use, and the ids we derive.

Verbs and activity types are ADL's (the xAPI vocabulary every LRS and dashboard knows) and
cmi5's where ADL has none; the few things neither names (the channel, why a learner left,
an erasure) are ours, under `LEARNBOT`.
"""

from __future__ import annotations

import uuid
from typing import Final

ADL: Final = "http://adlnet.gov/expapi"
ADL_W3ID: Final = "https://w3id.org/xapi/adl"
# learnbot's own vocabulary namespace: stable across installations, so the training unit's
# queries read every installation's statements alike.
LEARNBOT: Final = "https://w3id.org/learnbot/xapi"

XAPI_VERSION: Final = "1.0.3"


def verb(iri: str, display: str) -> dict[str, object]:
    """An xAPI verb with its English display name."""
    return {"id": iri, "display": {"en-US": display}}


REGISTERED: Final = verb(f"{ADL}/verbs/registered", "registered")
LAUNCHED: Final = verb(f"{ADL}/verbs/launched", "launched")
ANSWERED: Final = verb(f"{ADL}/verbs/answered", "answered")
COMPLETED: Final = verb(f"{ADL}/verbs/completed", "completed")
SUSPENDED: Final = verb(f"{ADL}/verbs/suspended", "suspended")
RESUMED: Final = verb(f"{ADL}/verbs/resumed", "resumed")
PREFERRED: Final = verb(f"{ADL}/verbs/preferred", "preferred")
ERASED: Final = verb(f"{LEARNBOT}/verbs/erased", "erased")

COURSE: Final = f"{ADL}/activities/course"
LESSON: Final = f"{ADL}/activities/lesson"
ASSESSMENT: Final = f"{ADL}/activities/assessment"
SURVEY: Final = "http://id.tincanapi.com/activitytype/survey"
INTERACTION: Final = f"{ADL}/activities/cmi.interaction"
GROUP: Final = "http://id.tincanapi.com/activitytype/group"  # a cohort
APPLICATION: Final = "http://activitystrea.ms/schema/1.0/application"  # learnbot itself

EXT_CHANNEL: Final = f"{LEARNBOT}/extensions/channel"
EXT_ATTEMPT: Final = f"{LEARNBOT}/extensions/attempt"
EXT_REASON: Final = f"{LEARNBOT}/extensions/reason"
EXT_FIELD: Final = f"{LEARNBOT}/extensions/profile-field"
EXT_SOURCE: Final = f"{LEARNBOT}/extensions/source"

# Names under which the ids below are derived (UUID v5), fixed forever: changing one would
# make every statement new to the LRS, and send the whole log twice.
_NAMESPACE: Final = uuid.UUID("6f1f6c0e-5d43-5b8e-9a57-2c1f0b1f4c1a")


def installation_namespace(public_url: str) -> uuid.UUID:
    """The namespace of one installation's ids: two installations never share a statement id."""
    return uuid.uuid5(_NAMESPACE, public_url.rstrip("/"))


def statement_id(namespace: uuid.UUID, event_id: int) -> str:
    """The statement of an event: the same for every retry, restart and process."""
    return str(uuid.uuid5(namespace, f"event/{event_id}"))


def registration(namespace: uuid.UUID, learner_key: str, cohort_id: int) -> str:
    """One enrollment (a learner in a cohort) as an xAPI registration."""
    return str(uuid.uuid5(namespace, f"enrollment/{learner_key}/{cohort_id}"))
