"""A template: a short YAML file describing a structured record, filled field by field.

    name: biography
    system: null                       # optional system prompt for every field
    retries: 3                         # invalid answers are retried with a new seed, then null
    fields:
      - name: gender
        kind: choice                   # choice | date | text
        choices: [female, male]        # or {builtin: first_names} | {csv: f.csv, column: c} | {range: ...}
        prompt: "Pick a gender ..."
      - name: first_name
        kind: choice
        choices: {builtin: first_names}
        prompt: "Pick a random {gender} first name. Answer with the name only."   # earlier fields only
        adapter: first_names           # a directory in adapters/ (or a path); auto: built for this list
                                       # and prompt once, cached; omit for the base model
        max_tokens: 8
        temperature: 1.0
        retries: 5                     # this field's retries (default: the template's)

A choice list may depend on earlier fields: a `where` value with {placeholders} (Python format
fields, so `{birth_date:.3}0` is the birth decade) filters the source by each record's values,
and `map` spells a field's values as the source's column does:

      - name: first_name
        kind: choice
        choices: {builtin: first_names_by_decade, where: {sex: "{gender}", decade: "{birth_date:.3}0"}}
        map: {gender: {female: F, male: M}}

Every combination of the earlier fields' values is enumerated at load time (one list, and one
decode trie, per distinct filter); a filter that leaves a list empty is an error.

Unknown keys are errors. Parsing and validation per kind:
- choice: the whole answer (quotes, trailing period and surrounding space removed) must equal a
  list item, case-insensitively; the list's spelling is stored. With `match: place`, a
  "City, Country" answer is also resolved through the offline GeoNames geocoder (synthgen.geo:
  aliases such as "Bombay, India" or "New York, USA") to the list's spelling.
- date: ISO (1987-03-14), "March 14, 1987", "14 March 1987" or 3/14/1987; optional `min`/`max`
  (ISO dates); stored as ISO.
- text: the first `sentences` sentences (default: all), `min_words`..`max_words` words, none of
  the `reject` regexes (searched in what the model wrote, after any `start`); an answer cut off at
  max_tokens keeps only its complete sentences.
  `start: "{first_name} {last_name}"` forces the answer's opening (rendered from the record; the
  model continues it, and the stored value is the whole text). `checks:` say what the text must
  agree with in its record (synthgen/checks.py: mentions, pronouns, years, other_names,
  profanity, max_nonwords); a text that fails one is retried with the next seed, then null with
  the failing check as its reason:

      - name: achievements
        kind: text
        prompt: "Write one sentence about the life achievements of {first_name} {last_name}, ..."
        start: "{first_name} {last_name}"
        checks: {mentions: [first_name, last_name], pronouns: gender,
                 years: {field: birth_date, until: 2026}, other_names: true, profanity: true,
                 max_nonwords: 0}

  `context: {duty: {builtin: career_duties, by: career}}` gives the prompt (or `start`) a {duty}
  placeholder that no field holds: the shipped table's `duty` column in the row of the record's
  career (an earlier choice field; every value of its list must have a row, checked at load).
  A sentence ends at . ! or ? before a space, not after "Dr.", "Co." or an initial (checks.sentences_of).

Sampling: `temperature`, `top_p`, `min_p` per field; left out, SAMPLING's default for the kind
(choices and dates sample the adapter's distribution as trained: 1.0, 1.0, 0; text: 1.5, 1.0, 0.1,
chosen by benchmarks/text_sampling.py, see SAMPLING).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import string
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from pathlib import Path


from .checks import Checks, from_spec as checks_from_spec, sentences_of
from .choices import choice_lookup, conditional_lookups, context_table, templated, clean_answer
from . import schema
from .errors import InputError, parse_yaml
from .paths import find_template, resolve_adapter

DECODES = ("constrained", "free")
_DEFAULT_MAX_TOKENS = {"choice": 12, "date": 16, "text": 80}
# sampling when a field does not say: list fields sample their adapter's distribution as trained (T 1);
# free text samples a trimmed distribution, chosen by measurement (benchmarks/text_sampling.py, docs/guide.md
# "Free text"): raw T-1 sampling from a small model writes non-words and contradicts its record.
SAMPLING = {"choice": {"temperature": 1.0, "top_p": 1.0, "min_p": 0.0},
            "date": {"temperature": 1.0, "top_p": 1.0, "min_p": 0.0},
            # text: min_p 0.1 cuts the tail a 135M model's non-words and non sequiturs come from, and temperature
            # 1.5 spreads what is left. benchmarks/text_sampling.py, 300 biographies, each setting's stored texts
            # (checks with retries): 1.0/1.0/0 keeps the most semantic diversity (Vendi 76) but reads as
            # nonsense ("a killer zebrafish"); truncation at temperature <= 1 (0.7/0.9, min_p 0.05-0.2) is
            # coherent but collapses onto stock phrases ("a testament to" in 16-26 % of texts, Vendi 63-65);
            # 1.5/1.0/0.1: Vendi 69, the top 3-gram in 6 %, no non-words, 1.33 requests per text (docs/guide.md,
            # "Free text that fits its record")
            "text": {"temperature": 1.5, "top_p": 1.0, "min_p": 0.1}}


class _Words(string.Formatter):
    """str.format, plus two specs for a value used as a word inside a sentence:
    `{career:lower}` -> "office clerk" (the first letter lowered, unless the value starts with an
    acronym: "CEO"), `{career:a}` -> "an office clerk" (the same, with its indefinite article: "an"
    before a vowel letter)."""

    SPECS = ("lower", "a")

    def format_field(self, value, format_spec):
        if format_spec not in self.SPECS:
            return super().format_field(value, format_spec)
        s = str(value)
        if s[:1].isupper() and not s[1:2].isupper():
            s = s[0].lower() + s[1:]
        return s if format_spec == "lower" else ("an " if s[:1].lower() in "aeiou" else "a ") + s


WORDS = _Words()


class _Sealed:
    """Read-only once `load_template` returns: a template never changes under the modules that share it.
    A changed template is a new one (`Template.with_changes`, `with_decode`), the loaded one left as it was."""

    def __setattr__(self, key, value):
        if self.__dict__.get("_sealed"):
            raise AttributeError(f"{type(self).__name__} {self.name!r} is read-only after loading: "
                                 "make a changed copy (Template.with_changes)")
        object.__setattr__(self, key, value)


def _seal(obj):
    object.__setattr__(obj, "_sealed", True)
    return obj


@dataclass(eq=False)
class Field(_Sealed):
    name: str
    kind: str
    prompt: str
    choices: object = None
    match: str = "exact"  # choice: exact (list item) | place ("City, Country" through the offline geocoder)
    decode: str = "free"  # constrained: sample inside the list's token trie (choice, date) | free: parse + retry
    adapter: str | None = None
    max_tokens: int = 0
    temperature: float = 1.0
    top_p: float = 1.0
    min_p: float = 0.0
    retries: int | None = None  # None: the template's
    min: str | None = None
    max: str | None = None
    min_words: int = 1
    max_words: int | None = None
    sentences: int | None = None
    reject: tuple[str, ...] = ()  # tuples: a sealed field's lists cannot change in place either
    start: str | None = None  # text: the answer's opening, rendered from the record; the model continues it
    context: dict = field(default_factory=dict, repr=False)  # text: placeholder -> (field, {its value: the table's})
    checks: Checks | None = None  # text: what it must agree with in its record (checks.py)
    description: str = ""
    value_map: dict = field(default_factory=dict)  # `map`: field -> {its value: the source's spelling}
    # resolved at load time
    depends: tuple[str, ...] = ()  # fields the prompt refers to
    given: tuple[str, ...] = ()  # fields the choice list depends on (its `where` placeholders)
    given_values: dict = field(default_factory=dict, repr=False)  # given field -> one value per distinct filter
    adapter_path: str | None = None
    _lookup: dict = field(default_factory=dict, repr=False)  # the whole list (all conditions' union)
    _lookups: dict = field(default_factory=dict, repr=False)  # condition key -> that condition's list
    _reject_re: tuple = field(default=(), repr=False)

    def _fill(self, text: str, record: dict) -> str:
        values = {k: record[k] for k in self.depends}
        for name, (by, rows) in self.context.items():
            if "{" + name in text:  # looked up only where used: the checks read openings of any record
                try:
                    values[name] = rows[record[by]]
                except KeyError:
                    raise InputError(f"field {self.name!r}: no `{name}` for {by} {record[by]!r}") from None
        return WORDS.vformat(text, (), values)

    def render(self, record: dict) -> str:
        return self._fill(self.prompt, record)

    def opening(self, record: dict) -> str | None:
        """The text's forced opening for this record (`start`), None without one."""
        return self._fill(self.start, record) if self.start else None

    @property
    def requires(self) -> tuple[str, ...]:
        """Earlier fields that must be valid before this one can be asked."""
        return tuple(dict.fromkeys(self.depends + self.given))

    def filters(self, record: dict) -> dict[str, str]:
        """This record's values in the list's templated `where` entries, spelled by `map`:
        {"sex": "F", "decade": "1980"} (empty for a list that depends on nothing)."""
        values = {k: self.value_map.get(k, {}).get(record[k], record[k]) for k in self.given}
        return {k: v.format(**values) for k, v in self.choices["where"].items() if templated(v)} if self.given else {}

    def condition(self, record: dict) -> str | None:
        """The key of this record's list ("F|1980"), None for a list that depends on nothing."""
        return "|".join(self.filters(record).values()) if self.given else None

    @property
    def lookups(self):
        """A conditional list's lists, read-only: {condition key ("F|1980"): {casefolded answer: value}}."""
        return MappingProxyType(self._lookups)

    def lookup(self, record: dict | None = None) -> dict:
        if not self.given or record is None:
            return self._lookup
        return self._lookups[self.condition(record)]

    def items(self, record: dict | None = None) -> list[str]:
        """The values constrained decoding may produce: the list's spellings (for this record's
        condition, if the list has one), or every day in min..max (ISO)."""
        if self.kind == "choice":
            return sorted(set(self.lookup(record).values()))
        if self.kind == "date":
            first, last = dt.date.fromisoformat(self.min), dt.date.fromisoformat(self.max)
            return [(first + dt.timedelta(days=k)).isoformat() for k in range((last - first).days + 1)]
        raise InputError(f"field {self.name!r}: a text field has no list to constrain to")

    def parse(self, text: str, finish_reason: str = "stop", record: dict | None = None) -> tuple[object | None, str | None]:
        """(value, None) for a valid answer, (None, reason) otherwise; `record` picks a conditional list."""
        if self.kind == "choice":
            return _parse_choice(self, text, finish_reason, self.lookup(record))
        if self.kind == "text":
            return _parse_text(self, text, finish_reason, record or {})
        return _PARSERS[self.kind](self, text, finish_reason)


@dataclass(eq=False)
class Template(_Sealed):
    name: str
    fields: tuple[Field, ...]
    system: str | None = None
    retries: int = 3
    description: str = ""
    population: str = ""
    path: str | None = None
    digest: str = ""

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)

    def retries_for(self, f: Field) -> int:
        """A field's own `retries`, else the template's."""
        return self.retries if f.retries is None else f.retries

    def with_decode(self, mode: str | None) -> "Template":
        """Every choice and date field decoded `mode` (the CLI's --decode); None keeps each field's own."""
        if mode is None:
            return self
        if mode not in DECODES:
            raise InputError(f"--decode must be one of {', '.join(DECODES)}, got {mode!r}")
        # an open date range has no list to constrain to: it stays free
        return self.with_changes({f.name: {"decode": mode} for f in self.fields
                                  if f.kind == "choice" or (f.kind == "date" and (mode == "free" or (f.min and f.max)))})

    def with_changes(self, changes: dict[str, dict]) -> "Template":
        """A new template whose fields named in `changes` have those attributes replaced ({field: {attr: value}});
        this one is left as it is."""
        unknown = set(changes) - {f.name for f in self.fields}
        if unknown:
            raise InputError(f"template {self.name!r} has no field(s) {', '.join(sorted(unknown))}")
        fields = [_seal(replace(f, **changes[f.name])) if changes.get(f.name) else f for f in self.fields]
        return _seal(replace(self, fields=tuple(fields)))

    def decodes(self) -> dict[str, str]:
        return {f.name: f.decode for f in self.fields}

    def adapters(self) -> dict[str, str]:
        return {f.name: f.adapter_path for f in self.fields if f.adapter_path}

    def features(self) -> dict:
        """The records' schema, the same for every output of this template (values are strings, or null)."""
        names = [f.name for f in self.fields]
        return {"index": "int64", "seed": "int64", **{n: "string" for n in names},
                "errors": {n: "string" for n in names}, "attempts": {n: "int64" for n in names}}

    def describe(self) -> dict:
        """What a report needs to know about each field (kept in the run's metadata)."""
        # absolute: `synthgen report` may run from another directory and resolves lists and adapters from here
        return {"name": self.name, "path": str(Path(self.path).resolve()) if self.path else None, "digest": self.digest,
                "population": self.population or None,
                "fields": [{"name": f.name, "kind": f.kind, "decode": f.decode, "adapter": f.adapter,
                            "depends": list(f.depends), "given": list(f.given),
                            "map": f.value_map or None,
                            "retries": self.retries_for(f),
                            "sampling": {"temperature": f.temperature, "top_p": f.top_p, "min_p": f.min_p},
                            "start": f.start if f.kind == "text" else None,
                            "checks": f.checks.describe() if f.checks else None,
                            "choices": f.choices if f.kind == "choice" else None,
                            "match": f.match if f.kind == "choice" else None} for f in self.fields]}


# --- parsing ---------------------------------------------------------------------------------

def _parse_choice(f: Field, text: str, finish: str, lookup: dict | None = None):
    if finish != "stop":
        return None, "cut off at max_tokens"
    s = clean_answer(text)
    if not s:
        return None, "empty answer"
    lookup = f._lookup if lookup is None else lookup
    hit = lookup.get(s.casefold())
    if hit is None and f.match == "place" and "," in s:
        from .geo import geocoder

        row = geocoder().lookup(s)  # "Bombay, India" -> "Mumbai, India"; "Houston, TX" -> "Houston, Texas"
        hit = next((lookup[k.casefold()] for k in (row["place"], row.get("world_place")) if k and k.casefold() in lookup),
                   None) if row else None
        if hit is None:
            return None, "not a known City, Country"
    if hit is None:
        return None, "not in the list" if lookup is f._lookup else "not in this record's list"
    return hit, None


_MONTHS = {m.lower(): i for i, m in enumerate(
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
     "November", "December"], 1)}
_MONTHS.update({k[:3]: v for k, v in list(_MONTHS.items())})
_DATE_RES = [
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"), ("y", "m", "d")),
    (re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$"), ("m", "d", "y")),
    (re.compile(r"^([A-Za-z]+)\.? (\d{1,2})(?:st|nd|rd|th)?,? (\d{4})$"), ("M", "d", "y")),
    (re.compile(r"^(\d{1,2})(?:st|nd|rd|th)? (?:of )?([A-Za-z]+)\.?,? (\d{4})$"), ("d", "M", "y")),
]


def parse_date(text: str) -> dt.date | None:
    s = clean_answer(text)
    for rx, order in _DATE_RES:
        m = rx.match(s)
        if not m:
            continue
        parts = dict(zip(order, m.groups()))
        month = int(parts["m"]) if "m" in parts else _MONTHS.get(parts["M"].lower())
        if month is None:
            return None
        try:
            return dt.date(int(parts["y"]), month, int(parts["d"]))
        except ValueError:
            return None
    return None


def _parse_date(f: Field, text: str, finish: str):
    if finish != "stop":
        return None, "cut off at max_tokens"
    d = parse_date(text)
    if d is None:
        return None, "not a date"
    if f.min and d.isoformat() < f.min:
        return None, f"before {f.min}"
    if f.max and d.isoformat() > f.max:
        return None, f"after {f.max}"
    return d.isoformat(), None


def _parse_text(f: Field, text: str, finish: str, record: dict | None = None):
    """The text (after its forced opening, if the field has one) cut to whole sentences and checked:
    words, `reject` patterns, then the field's `checks` against `record`."""
    opening = ""
    if f.start and record is not None:
        opening = re.sub(r"\s+", " ", f.opening(record).strip())
        text = f.opening(record) + text
    s = re.sub(r"\s+", " ", text.strip())
    if finish != "stop" or f.sentences:
        sentences = sentences_of(s)
        if finish != "stop" and not sentences:
            return None, "cut off at max_tokens"
        if f.sentences and s and not sentences:
            return None, "no complete sentence (nothing ends with . ! or ?)"
        if f.sentences or finish != "stop":
            s = " ".join(sentences[: f.sentences] if f.sentences else sentences)
    if not s:
        return None, "empty answer"
    words = len(s.split())
    if words < f.min_words:
        return None, f"fewer than {f.min_words} words"
    if f.max_words is not None and words > f.max_words:
        return None, f"more than {f.max_words} words"
    written = s[len(opening):] if s.startswith(opening) else s  # reject what the model wrote, not the record's values
    for rx in f._reject_re:
        if rx.search(written):
            return None, f"matches reject pattern {rx.pattern!r}"
    if f.checks and record is not None:
        why = f.checks.failure(s, record, opening)
        if why:
            return None, why
    return s, None


_PARSERS = {"choice": _parse_choice, "date": _parse_date, "text": _parse_text}


# --- loading ---------------------------------------------------------------------------------

def load_template(name_or_path: str | Path, *, use_adapters: bool = True) -> Template:
    """A template by name (templates/) or path, every key checked (synthgen.schema declares them):
    one-line errors naming the file, the field and the key."""
    path = find_template(str(name_or_path))
    raw = path.read_bytes()
    where = f"template {str(path)!r}"
    data = parse_yaml(raw, where)
    if not isinstance(data, dict):
        raise InputError(f"{where} must be a YAML mapping with name and fields")
    spec = schema.validate(schema.TemplateFile, data, where)
    fields: list[Field] = []
    for fm in spec.fields:
        fwhere = f"{where}, field {fm.name!r}"
        f = _field_head(fm, fields, data["fields"], fwhere)
        _field_kind(f, fm, fwhere, path, fields)
        _field_decode(f, fm, fwhere, path, use_adapters)
        fields.append(f)
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return _seal(Template(name=spec.name, fields=tuple(_seal(f) for f in fields), system=spec.system, retries=spec.retries,
                          description=spec.description, population=spec.population, path=str(path), digest=digest))


def _field_head(fm, fields: list[Field], fields_raw: list, fwhere: str) -> Field:
    """A field's name, kind, prompt (its placeholders: earlier fields only) and sampling numbers."""
    if any(f.name == fm.name for f in fields):
        raise InputError(f"{fwhere}: duplicate field name")
    refs = []
    for key, text in (("prompt", fm.prompt), ("start", getattr(fm, "start", None))):
        try:
            parsed = [(r, spec) for _, r, spec, _ in WORDS.parse(text or "") if r is not None]
            for r, spec in parsed:  # a spec that str.format cannot apply to a string value
                if spec not in WORDS.SPECS and not re.fullmatch(r"[<>^]?\d*(\.\d+)?s?", spec or ""):
                    raise ValueError(f"{{{r}:{spec}}}: the specs are :.N (the first N characters), :lower, :a")
            refs += [r for r, _ in parsed]
        except ValueError as e:
            raise InputError(f"{fwhere}: bad placeholder in {key} ({e}); write {{{{ and }}}} for literal braces") from None
    earlier = [f.name for f in fields]
    context = getattr(fm, "context", None) or {}
    for name, c in context.items():
        if c.by not in earlier:
            raise InputError(f"{fwhere}: `context.{name}.by` must name an earlier choice field, got {c.by!r}")
    refs = [context[r].by if r in context else r for r in refs]  # {duty} looked up by the record's career: depends on career
    for r in refs:
        if r not in earlier:
            later = any(isinstance(x, dict) and x.get("name") == r for x in fields_raw)
            raise InputError(f"{fwhere}: {'prompt' if r in fm.prompt else 'start'} refers to {{{r}}}, which is "
                             + ("a later field: fields are filled in order" if later else "not a field")
                             + (f" (earlier fields: {', '.join(earlier)})" if earlier else ""))
    return Field(name=fm.name, kind=fm.kind, prompt=fm.prompt, depends=tuple(dict.fromkeys(refs)),
                 choices=getattr(fm, "choices", None), description=fm.description,
                 max_tokens=fm.max_tokens or _DEFAULT_MAX_TOKENS[fm.kind], retries=fm.retries,
                 **{k: v if (v := getattr(fm, k)) is not None else SAMPLING[fm.kind][k] for k in ("temperature", "top_p", "min_p")})


def _field_kind(f: Field, fm, fwhere: str, path: Path, fields: list[Field]) -> None:
    """The keys of one kind: a choice's list (maybe conditional), a date's range, a text's checks."""
    if f.kind == "choice":
        f.value_map, f.match = fm.map or {}, fm.match
        c = f.choices
        if isinstance(c, dict) and isinstance(c.get("where"), dict) and any(map(templated, c["where"].values())):
            f._lookups = conditional_lookups(f, fwhere, path.parent, fields)
            f._lookup = {k: v for lk in f._lookups.values() for k, v in lk.items()}
        else:
            if f.value_map:
                raise InputError(f"{fwhere}: `map` needs a `where` with {{placeholders}} in `choices`")
            f._lookup = choice_lookup(f, fwhere, path.parent)
    elif f.kind == "date":
        f.min, f.max = (d.isoformat() if d else None for d in (fm.min, fm.max))
        if f.min and f.max and f.min > f.max:
            raise InputError(f"{fwhere}: `min` {f.min} is after `max` {f.max}")
    else:
        f.min_words, f.max_words, f.sentences, f.reject = fm.min_words, fm.max_words, fm.sentences, tuple(fm.reject)
        f._reject_re = tuple(re.compile(r, re.IGNORECASE) for r in fm.reject)
        f.start = fm.start
        f.context = {name: context_table(name, c, fwhere, fields) for name, c in (fm.context or {}).items()}
        if fm.checks is not None:
            f.checks = checks_from_spec(fm.checks, fwhere, [x.name for x in fields])


def _field_decode(f: Field, fm, fwhere: str, path: Path, use_adapters: bool) -> None:
    """How the field decodes (constrained inside its list, or free) and through which adapter."""
    kind = f.kind
    f.decode = fm.decode or ("free" if kind == "text" else "constrained")
    if f.decode == "constrained" and kind == "text":
        raise InputError(f"{fwhere}: `decode: constrained` is for choice and date fields (text is free)")
    if f.decode == "constrained" and kind == "date" and not (f.min and f.max):
        if fm.decode:
            raise InputError(f"{fwhere}: constrained decoding of a date needs `min` and `max` (or decode: free)")
        f.decode = "free"  # an open date range has no list to constrain to
    adapter = fm.adapter
    if adapter is None:
        return
    f.adapter = adapter
    if adapter == "auto":  # built (once, cached) before generation: synthgen.auto
        if kind == "text" or (kind == "date" and not (f.min and f.max)):
            raise InputError(f"{fwhere}: adapter: auto needs a list: a choice field or a date with min and max")
        if kind == "choice" and not f.given and len(f._lookup) < 2:  # (one value of a conditional list may be 1)
            raise InputError(f"{fwhere}: adapter: auto needs at least 2 choices to spread over (build-adapter refuses 1)")
    elif use_adapters:
        f.adapter_path = resolve_adapter(adapter, path)
