"""What a trainer does in the console: push, cancel, pause/resume, import, requeue.

Every action is a POST form with its CSRF token and calls the same `bot.trainers` function
as the CLI; a cohort the reader may not act on is a 404, as if it did not exist.
"""

from __future__ import annotations

import io
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.analytics.pseudonym import pseudonym
from bot.trainers import importer, push
from bot.trainers.cohorts import CohortError, CohortInfo, cohort_for, set_status
from bot.trainers.failed import cohort_failures, requeue
from bot.trainers.recent_pushes import recent_pushes
from bot.trainers.roles import RoleError
from bot.trainers.text import N_, TrainerError, format_eta
from bot.web.console.app import MAX_FORM_BYTES, Console, Reader

MAX_CSV_BYTES = 2 * 1024 * 1024  # some 40,000 learners: more is a job for the CLI
REFRESH_SECONDS = 3


async def _signed_in(console: Console, request: Request) -> Reader | Response:
    reader = await console.reader(request)
    return console.to_sign_in(request) if reader.user is None else reader


async def readers_cohort(console: Console, reader: Reader, cohort_id: str) -> CohortInfo | None:
    """The cohort if the reader may act on it; None (a 404) otherwise."""
    assert reader.user is not None
    if not cohort_id.isdigit():
        return None
    try:
        async with console.config.engine.connect() as conn:
            return await cohort_for(conn, reader.user, cohort_id)
    except (CohortError, RoleError):
        return None


async def _cohort_form(
    console: Console, request: Request, **limits: int
) -> tuple[Reader, CohortInfo, FormData] | Response:
    """A signed-in reader's checked form (CSRF, size) posted to one of their cohorts, or the
    response that refuses it (sign-in, 404, 403, 413)."""
    found = await _signed_in(console, request)
    if isinstance(found, Response):
        return found
    cohort = await readers_cohort(console, found, request.path_params["cohort"])
    if cohort is None:
        return console.not_found(found, request)
    form = await console.checked_form(request, found, **limits)
    if isinstance(form, Response):
        return form
    return found, cohort, form


def _lessons(console: Console, cohort: CohortInfo) -> list[tuple[str, str]]:
    """(lesson id, title) of every lesson of the cohort's pathway, in order."""
    found = []
    for course_id in cohort.course_ids:
        loaded = console.config.courses.get(course_id)
        if loaded is None:
            continue
        for lesson_id, lesson in loaded.lessons.items():
            found.append((lesson_id, f"{course_id} · {lesson.title}"))
    return found


async def cohort_page(
    console: Console,
    request: Request,
    *,
    reader: Reader | None = None,
    cohort: CohortInfo | None = None,
    status: int = 200,
    **extra: Any,
) -> Response:
    """GET /console/cohorts/<id>: the cohort's state and its action forms."""
    if reader is None:
        found = await _signed_in(console, request)
        if isinstance(found, Response):
            return found
        reader = found
    if cohort is None:
        cohort = await readers_cohort(console, reader, request.path_params["cohort"])
        if cohort is None:
            return console.not_found(reader, request)
    assert reader.user is not None
    async with console.config.engine.connect() as conn:
        failures, failed_total = await cohort_failures(conn, reader.user, cohort)
        pushes = await recent_pushes(conn, reader.user, cohort)
    key = console.config.settings.secret_key
    return console.render(
        reader,
        "cohort.html",
        status=status,
        request=request,
        cohort=cohort,
        lessons=_lessons(console, cohort),
        failures=[(failure, pseudonym(key, failure.learner_key)) for failure in failures],
        failed_total=failed_total,
        pushes=pushes,
        **extra,
    )


async def change_status(console: Console, request: Request) -> Response:
    """POST /console/cohorts/<id>/status: pause or resume the cohort."""
    posted = await _cohort_form(console, request)
    if isinstance(posted, Response):
        return posted
    reader, cohort, form = posted
    wanted = str(form.get("status", ""))
    if wanted not in ("active", "paused"):
        return console.error(
            reader, 400, reader.ui.gettext("Unknown cohort status."), request=request
        )
    async with console.config.engine.begin() as conn:
        await set_status(conn, cohort, wanted)
    return RedirectResponse(f"/console/cohorts/{cohort.id}", status_code=303)


async def start(console: Console, request: Request) -> Response:
    """POST /console/cohorts/<id>/push: push a lesson now or at a time, then show progress."""
    posted = await _cohort_form(console, request)
    if isinstance(posted, Response):
        return posted
    reader, cohort, form = posted
    assert reader.user is not None
    lesson_id = str(form.get("lesson", ""))
    at = str(form.get("at", "")).strip().replace("T", " ")
    try:
        push.find_lesson(cohort, lesson_id, console.config.courses)
        send_at = push.parse_send_at(at, cohort.time_zone) if form.get("when") == "at" else None
        started = await push.start_push(
            console.config.engine,
            user=reader.user,
            cohort_id_or_code=str(cohort.id),
            lesson_id=lesson_id,
            send_at=send_at,
            courses=console.config.courses,
            channels=sorted(console.config.channels),
        )
    except TrainerError as exc:
        return await cohort_page(
            console, request, reader=reader, cohort=cohort, status=400, push_error=exc
        )
    return RedirectResponse(f"/console/pushes/{started.id}", status_code=303)


async def _push_cohort(console: Console, reader: Reader, push_id: str) -> CohortInfo | None:
    assert reader.user is not None
    if not push_id.isdigit():
        return None
    try:
        async with console.config.engine.connect() as conn:
            cohort_id = await push.push_cohort(conn, reader.user, int(push_id))
            return await cohort_for(conn, reader.user, str(cohort_id))
    except (push.PushError, CohortError, RoleError):
        return None


async def progress(console: Console, request: Request) -> Response:
    """GET /console/pushes/<id>: where the push stands and its ETA; refreshes until done."""
    found = await _signed_in(console, request)
    if isinstance(found, Response):
        return found
    reader = found
    cohort = await _push_cohort(console, reader, request.path_params["push"])
    if cohort is None:
        return console.not_found(reader, request)
    push_id = int(request.path_params["push"])
    state = await push.push_progress(console.config.engine, push_id)
    eta = None
    if not state.finished:
        settings = console.config.settings
        seconds = push.until(state.send_at).total_seconds()
        try:
            lesson = push.find_lesson(cohort, state.lesson_id, console.config.courses)
            seconds += push.estimate_seconds(
                state.pending_by_channel, push.lesson_cost(lesson, settings), settings
            )
        except push.PushError:
            pass  # the course changed since: the wait alone is still a fair estimate
        eta = format_eta(reader.ui, seconds)
    # The Refresh header reloads the page without JavaScript. Not a <meta> refresh: the reader
    # can turn it off (WCAG 2.2.1), and axe-core rightly flags a <meta> one they cannot.
    refreshing = not state.finished and request.query_params.get("refresh") != "off"
    return console.render(
        reader,
        "push.html",
        request=request,
        cohort=cohort,
        state=state,
        eta=eta,
        refresh=REFRESH_SECONDS if refreshing else None,
        headers={"Refresh": str(REFRESH_SECONDS)} if refreshing else None,
    )


async def cancel(console: Console, request: Request) -> Response:
    """POST /console/pushes/<id>/cancel: cancel what the push has not sent yet."""
    found = await _signed_in(console, request)
    if isinstance(found, Response):
        return found
    reader = found
    cohort = await _push_cohort(console, reader, request.path_params["push"])
    if cohort is None:
        return console.not_found(reader, request)
    form = await console.checked_form(request, reader)
    if isinstance(form, Response):
        return form
    assert reader.user is not None
    push_id = int(request.path_params["push"])
    await push.cancel_push(console.config.engine, user=reader.user, push_id=push_id)
    return RedirectResponse(f"/console/pushes/{push_id}", status_code=303)


async def _parsed(upload: UploadFile, region: str | None) -> importer.ParsedCsv | None:
    """The upload validated as `cohort import` validates a file; None when it is too large."""
    data = await upload.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        return None
    name = upload.filename or "learners.csv"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # as importer.read_csv reports it, on line 1
        problem = N_("not UTF-8 text: %(reason)s", reason=exc.reason)
        return importer.ParsedCsv(errors=[importer.RowError(name, 1, "file", problem)])
    return importer.parse_csv(io.StringIO(text, newline=""), file=name, default_region=region)


async def import_csv(console: Console, request: Request) -> Response:
    """POST /console/cohorts/<id>/import: enrol learners from a CSV, as `cohort import` does."""
    posted = await _cohort_form(console, request, limit=MAX_CSV_BYTES + MAX_FORM_BYTES, files=1)
    if isinstance(posted, Response):
        return posted
    reader, cohort, form = posted
    upload = form.get("file")
    ui = reader.ui
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await cohort_page(
            console,
            request,
            reader=reader,
            cohort=cohort,
            status=400,
            import_problem=ui.gettext("Choose a CSV file to import."),
        )
    region = str(form.get("default_region", "")).strip().upper() or None
    if region is not None and (len(region) != 2 or not region.isalpha()):
        return await cohort_page(
            console,
            request,
            reader=reader,
            cohort=cohort,
            status=400,
            import_problem=ui.gettext("Country: expected two letters, such as KE."),
        )
    parsed = await _parsed(upload, region)
    if parsed is None:
        return await cohort_page(
            console,
            request,
            reader=reader,
            cohort=cohort,
            status=413,
            import_problem=ui.gettext(
                "The file is larger than %(size)s MB: import it with %(command)s.",
                size=MAX_CSV_BYTES // (1024 * 1024),
                command="learnbot cohort import",
            ),
        )
    skip = form.get("skip_invalid") == "1"
    errors = [(error.line, error.field, ui.render(error.text)) for error in parsed.errors]
    if parsed.errors and not skip:
        return await cohort_page(
            console,
            request,
            reader=reader,
            cohort=cohort,
            status=400,
            import_errors=errors,
            import_bad=len(parsed.bad_lines),
        )
    result = await importer.import_learners(console.config.engine, cohort, parsed.rows)
    return await cohort_page(
        console,
        request,
        reader=reader,
        cohort=cohort,
        import_result=result,
        import_errors=errors,
        import_bad=len(parsed.bad_lines),
    )


async def requeue_failed(console: Console, request: Request) -> Response:
    """POST /console/cohorts/<id>/requeue: send failed deliveries again (one, or all)."""
    posted = await _cohort_form(console, request)
    if isinstance(posted, Response):
        return posted
    reader, cohort, form = posted
    assert reader.user is not None
    chosen = str(form.get("delivery", "all"))
    ids = None if chosen == "all" else [int(chosen)] if chosen.isdigit() else []
    async with console.config.engine.begin() as conn:
        count = await requeue(conn, reader.user, cohort, ids)
    return await cohort_page(console, request, reader=reader, cohort=cohort, requeued=count)
