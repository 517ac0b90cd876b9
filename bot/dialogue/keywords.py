"""The words learners type (commands, yes/no, true/false), per shipped locale.

These tables are data, not gettext: a learner may type a command in any shipped
locale whatever their own locale, so every table is searched on every message.
HELP shows each command's first keyword in the learner's own locale.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Command(StrEnum):
    """Commands a learner can send at any point of the dialogue."""

    JOIN = "join"  # followed by a code
    NEXT = "next"
    PROGRESS = "progress"
    HELP = "help"
    LANGUAGE = "language"
    STOP = "stop"
    START = "start"
    DELETE = "delete"  # DELETE MY DATA, confirmed by YES
    SKIP = "skip"  # skip a profile question
    ZONE = "zone"  # choose one's time zone


# The first word of each list is the one HELP shows. Entries are written naturally
# (accents, Arabic hamza) and normalised when the tables are built.
COMMAND_WORDS: Mapping[str, Mapping[Command, tuple[str, ...]]] = {
    "en": {
        Command.JOIN: ("JOIN",),
        Command.NEXT: ("NEXT", "CONTINUE", "NEXT LESSON"),
        Command.PROGRESS: ("PROGRESS", "SCORE", "MY PROGRESS", "STATUS"),
        Command.HELP: ("HELP", "INFO", "COMMANDS", "MENU"),
        Command.LANGUAGE: ("LANGUAGE", "LANG", "LANGUAGES"),
        # The usual carrier opt-out words (Twilio, CTIA) plus OPTOUT.
        Command.STOP: ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"),
        # YES is deliberately absent: it confirms deletion and answers true/false questions.
        Command.START: ("START", "UNSTOP", "RESUME", "SUBSCRIBE"),
        Command.DELETE: ("DELETE MY DATA", "DELETE DATA", "ERASE MY DATA", "FORGET ME"),
        Command.SKIP: ("SKIP",),
        Command.ZONE: ("ZONE", "TIMEZONE", "TIME ZONE"),
    },
    "fr": {
        Command.JOIN: ("REJOINDRE", "INSCRIPTION", "S'INSCRIRE", "INSCRIRE", "REJOINS"),
        Command.NEXT: ("SUIVANT", "CONTINUER", "SUIVANTE", "LEÇON SUIVANTE", "CONTINUE"),
        Command.PROGRESS: ("PROGRÈS", "PROGRESSION", "MES PROGRÈS"),
        Command.HELP: ("AIDE", "AIDEZ-MOI", "AU SECOURS"),
        Command.LANGUAGE: ("LANGUE", "LANGUES"),
        Command.STOP: (
            "ARRÊT",
            "ARRÊTER",
            "ARRÊTE",
            "DÉSABONNER",
            "SE DÉSABONNER",
            "DÉSINSCRIPTION",
            "DÉSINSCRIRE",
        ),
        Command.START: ("DÉMARRER", "COMMENCER", "REPRENDRE", "RECOMMENCER"),
        Command.DELETE: ("SUPPRIMER MES DONNÉES", "EFFACER MES DONNÉES", "OUBLIEZ-MOI"),
        Command.SKIP: ("PASSER", "SAUTER"),
        Command.ZONE: ("FUSEAU", "FUSEAU HORAIRE"),
    },
    "es": {
        Command.JOIN: ("UNIRSE", "UNIRME", "INSCRIBIRME", "INSCRIBIRSE"),
        Command.NEXT: ("SIGUIENTE", "CONTINUAR", "SEGUIR", "LECCIÓN SIGUIENTE"),
        Command.PROGRESS: ("PROGRESO", "MI PROGRESO", "AVANCE"),
        Command.HELP: ("AYUDA", "AYÚDAME"),
        Command.LANGUAGE: ("IDIOMA", "LENGUA", "IDIOMAS"),
        Command.STOP: (
            "PARAR",
            "ALTO",
            "BAJA",
            "DETENER",
            "DARSE DE BAJA",
            "DARME DE BAJA",
            "SALIR",
        ),
        Command.START: ("EMPEZAR", "COMENZAR", "REANUDAR", "INICIAR"),
        Command.DELETE: ("BORRAR MIS DATOS", "ELIMINAR MIS DATOS", "BORRAR DATOS"),
        Command.SKIP: ("OMITIR", "SALTAR"),
        Command.ZONE: ("ZONA", "ZONA HORARIA", "HORARIO"),
    },
    "pt": {
        Command.JOIN: ("ENTRAR", "ADERIR", "INSCREVER", "PARTICIPAR"),
        Command.NEXT: ("PRÓXIMO", "SEGUINTE", "PRÓXIMA", "PRÓXIMA LIÇÃO", "CONTINUAR"),
        Command.PROGRESS: ("PROGRESSO", "MEU PROGRESSO"),
        Command.HELP: ("AJUDA", "AJUDAR"),
        Command.LANGUAGE: ("LÍNGUA", "IDIOMA"),
        Command.STOP: ("PARAR", "SAIR", "CANCELAR"),
        Command.START: ("INICIAR", "COMEÇAR", "RETOMAR"),
        Command.DELETE: (
            "APAGAR OS MEUS DADOS",
            "APAGAR MEUS DADOS",
            "EXCLUIR MEUS DADOS",
            "APAGAR DADOS",
        ),
        Command.SKIP: ("SALTAR", "PULAR"),
        Command.ZONE: ("FUSO", "FUSO HORÁRIO"),
    },
    "sw": {
        Command.JOIN: ("JIUNGE", "JIUNGA", "JISAJILI"),
        # "Next" agrees with its noun (ijayo/inayofuata, lijalo for "somo"), or is a verb (endelea).
        Command.NEXT: (
            "IFUATAYO",
            "ENDELEA",
            "IJAYO",
            "INAYOFUATA",
            "LIJALO",
            "LINALOFUATA",
            "SOMO LIJALO",
            "SOMO LINALOFUATA",
        ),
        Command.PROGRESS: ("MAENDELEO", "MAENDELEO YANGU", "ALAMA"),
        Command.HELP: ("MSAADA", "SAIDIA", "NISAIDIE", "USAIDIZI"),
        Command.LANGUAGE: ("LUGHA",),
        Command.STOP: ("ACHA", "SIMAMA", "SITISHA", "SIMAMISHA", "KOMESHA"),
        Command.START: ("ANZA", "ANZISHA", "ANZA TENA"),
        Command.DELETE: ("FUTA DATA YANGU", "FUTA TAARIFA ZANGU", "FUTA DATA", "FUTA TAARIFA"),
        Command.SKIP: ("RUKA", "PITA"),
        Command.ZONE: ("SAA", "UKANDA WA SAA"),
    },
    "ar": {
        Command.JOIN: ("انضم", "انضمام", "الانضمام"),
        Command.NEXT: ("التالي", "تالي", "الدرس التالي", "تابع", "متابعة", "استمر", "واصل"),
        # Noun and verb: تقدم (progress / advance), التقدم, تقدمي (my progress).
        Command.PROGRESS: ("تقدمي", "التقدم", "تقدم", "النتيجة", "نتيجتي"),
        Command.HELP: ("مساعدة", "المساعدة", "ساعدني", "الأوامر", "أوامر"),
        Command.LANGUAGE: ("اللغة", "لغة", "اللغات"),
        Command.STOP: ("توقف", "إيقاف", "إلغاء", "أوقف", "قف", "إلغاء الاشتراك"),
        # ابدء is a common spelling of ابدأ.
        Command.START: ("ابدأ", "استئناف", "ابدء", "بدء", "البدء", "استأنف"),
        Command.DELETE: ("احذف بياناتي", "حذف بياناتي", "امسح بياناتي", "حذف البيانات"),
        Command.SKIP: ("تخطي", "تخط", "تجاوز"),
        Command.ZONE: ("التوقيت", "توقيت", "المنطقة الزمنية"),
    },
}

# Confirmation of DELETE MY DATA (anything else cancels); the first word per locale is shown.
YES_BY_LOCALE: Mapping[str, str] = {
    "en": "YES", "fr": "OUI", "es": "SÍ", "pt": "SIM", "sw": "NDIYO", "ar": "نعم",
}  # fmt: skip
YES_WORDS: tuple[str, ...] = (*YES_BY_LOCALE.values(), "Y", "SI", "OK")

# True/false answers; "yes"/"no" count too, as learners answer statements that way.
TRUE_WORDS: tuple[str, ...] = (
    "TRUE", "T", "YES", "VRAI", "OUI", "VERDADERO", "VERDADEIRO", "SÍ", "SIM",
    "KWELI", "NDIYO", "صحيح", "صح", "نعم",
)  # fmt: skip
FALSE_WORDS: tuple[str, ...] = (
    "FALSE", "F", "NO", "FAUX", "NON", "FALSO", "NÃO", "SI KWELI", "UONGO", "HAPANA",
    "خطأ", "خطا", "غلط", "لا",
)  # fmt: skip

_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
# Arabic letters learners type interchangeably: alef wasla, taa marbuta (often typed as
# haa), alef maqsura (often typed as yaa, and the reverse), Persian-keyboard yeh and keheh.
# Hamza-carrying alefs (أ إ آ) decompose under NFKD and lose their mark with the accents.
_ARABIC_LETTERS = str.maketrans("ٱةىیک", "اهييك")
_NOT_WORD = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Casefold, drop accents and Arabic marks, unify Arabic letter variants, ASCII digits."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_DIGITS).casefold())
    # Mn drops Latin accents and Arabic harakat/hamza marks; tatweel is a letter-stretcher.
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    stripped = stripped.replace("\u0640", "").translate(_ARABIC_LETTERS)
    return _SPACES.sub(" ", _NOT_WORD.sub(" ", stripped)).strip()


@dataclass(frozen=True, slots=True)
class Match:
    """A command found in a message: which, in which locale's words, and what followed."""

    command: Command
    locale: str
    argument: str  # the rest of the message, as typed (e.g. a join code)


def _build_index() -> dict[str, tuple[Command, str]]:
    index: dict[str, tuple[Command, str]] = {}
    for locale, table in COMMAND_WORDS.items():
        for command, words in table.items():
            for word in words:
                # The first locale listing a word wins: "PARAR" is es and pt, both STOP.
                index.setdefault(normalize(word), (command, locale))
    return index


_INDEX = _build_index()
_MAX_WORDS = max(key.count(" ") + 1 for key in _INDEX)
_YES = frozenset(normalize(w) for w in YES_WORDS)
TRUE_FORMS = frozenset(normalize(w) for w in TRUE_WORDS)
FALSE_FORMS = frozenset(normalize(w) for w in FALSE_WORDS)


def find_command(text: str) -> Match | None:
    """The command a message starts with (longest phrase first), or None."""
    tokens = text.split()
    # "/start@learnbot ABC123" is Telegram's command form in groups: drop the bot name.
    if tokens and tokens[0].startswith("/"):
        tokens[0] = tokens[0].split("@", 1)[0]
    pairs = [(normalize(token), token) for token in tokens]
    pairs = [(word, token) for word, token in pairs if word]
    words = [word for word, _ in pairs]
    for size in range(min(_MAX_WORDS, len(words)), 0, -1):
        found = _INDEX.get(" ".join(words[:size]))
        if found is not None:
            command, locale = found
            argument = " ".join(token for _, token in pairs[size:])
            return Match(command, locale, argument)
    return None


def is_yes(text: str) -> bool:
    """Whether a message confirms (YES in any shipped locale)."""
    return normalize(text) in _YES


def yes_word(locale: str) -> str:
    """The word that confirms in a locale (English if the locale has none)."""
    return YES_BY_LOCALE.get(locale.split("_")[0], YES_BY_LOCALE["en"])


def help_word(command: Command, locale: str) -> str:
    """The keyword HELP shows for a command in a locale (English if the locale has none)."""
    table = COMMAND_WORDS.get(locale.split("_")[0]) or COMMAND_WORDS["en"]
    return table[command][0]
