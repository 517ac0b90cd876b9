"""Pick a UI locale for a web request: `?lang=`, then Accept-Language, then the default."""

from __future__ import annotations

from collections.abc import Sequence


def negotiate(
    lang: str | None, accept_language: str | None, available: Sequence[str], default: str
) -> str:
    """The best of `available` for this request; `default` if nothing matches."""
    wanted = [lang] if lang else []
    wanted += parse_accept_language(accept_language or "")
    for tag in wanted:
        match = _match(tag, available)
        if match is not None:
            return match
    return default


def parse_accept_language(header: str) -> list[str]:
    """Language tags of an Accept-Language header, best first, without `*` or q=0."""
    weighted: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


def _match(tag: str, available: Sequence[str]) -> str | None:
    normalized = tag.replace("-", "_").lower()
    by_lower = {locale.lower(): locale for locale in available}
    if normalized in by_lower:
        return by_lower[normalized]
    # pt_BR asked, pt shipped: the language alone is the natural fallback.
    language = normalized.split("_")[0]
    return by_lower.get(language)
