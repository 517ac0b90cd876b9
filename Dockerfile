# syntax=docker/dockerfile:1
# Build stage: install learnbot into a virtualenv and compile the gettext catalogs.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/learnbot
# Exactly the lock: every package pinned and checked against its hashes; learnbot itself is
# built without build isolation, with the pinned setuptools, so nothing unpinned is fetched.
COPY requirements/runtime.txt ./requirements/
RUN /opt/learnbot/bin/pip install --require-hashes --no-deps -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY scheduler ./scheduler
RUN /opt/learnbot/bin/pip install --no-deps --no-build-isolation '.'
COPY lessons ./lessons
COPY locales ./locales
# Fails the build on a broken lesson or an incomplete declared locale.
RUN /opt/learnbot/bin/learnbot lessons check --lessons-dir lessons --locales-dir locales \
 && /opt/learnbot/bin/learnbot lessons compile --lessons-dir lessons --locales-dir locales

# Run stage: no compiler, no sources beyond the course data, a non-root user.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 learnbot
COPY --from=build /opt/learnbot /opt/learnbot
COPY --from=build --chown=learnbot:learnbot /src/lessons /app/lessons
COPY --from=build --chown=learnbot:learnbot /src/locales /app/locales
WORKDIR /app
RUN mkdir -p /app/data && chown learnbot:learnbot /app/data
USER learnbot
ENV PATH=/opt/learnbot/bin:$PATH \
    LEARNBOT_HOST=0.0.0.0 \
    LEARNBOT_PORT=8080 \
    LEARNBOT_DATABASE_URL=sqlite+aiosqlite:////app/data/learnbot.db
VOLUME ["/app/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('LEARNBOT_PORT','8080'), timeout=4)" || exit 1
CMD ["learnbot", "serve"]
