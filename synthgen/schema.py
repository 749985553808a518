"""What a template and a list spec may say, declared once (pydantic v2, unknown keys forbidden, no
coercion), and its errors turned into the one line a user reads:

    template 'pets.yaml', field 'age': `max_tokens` must be an integer >= 1 and <= 4096, got 0

The checks that need more than one key's value (a prompt's placeholders name earlier fields, a
choice list's source exists, min <= max) stay with the loaders: template.py and lists/spec.py.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, ClassVar, Literal, Union

import annotated_types
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from .errors import InputError

RESERVED = {"index", "seed", "errors", "attempts"}
KINDS = ("choice", "date", "text")
SOURCE_KINDS = {"builtin", "inline", "range", "dates", "csv"}

NonEmpty = Annotated[str, Field(pattern=r"\S")]


def _iso(value):
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"must be an ISO date (YYYY-MM-DD), got {value!r}") from None


IsoDate = Annotated[dt.date | None, BeforeValidator(_iso)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    hints: ClassVar[dict[str, str]] = {}  # key -> what it must be, for the error line


class _FieldBase(_Strict):
    name: str
    kind: str
    prompt: NonEmpty
    description: str = ""
    decode: Literal["constrained", "free"] | None = None
    adapter: NonEmpty | None = None
    max_tokens: Annotated[int, Field(ge=1, le=4096)] | None = None
    temperature: Annotated[float, Field(ge=0, le=10)] | None = None  # None: template.SAMPLING for the kind
    top_p: Annotated[float, Field(ge=0.0001, le=1)] | None = None
    min_p: Annotated[float, Field(ge=0, le=1)] | None = None
    retries: Annotated[int, Field(ge=0, le=100)] | None = None
    hints: ClassVar[dict[str, str]] = {"name": "an identifier (letters, digits, _)", "prompt": "a non-empty string",
                                       "adapter": "an adapter name or path"}

    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not v.isidentifier():
            raise ValueError("must be an identifier (letters, digits, _)")
        if v in RESERVED:
            raise ValueError(f"{v!r} is reserved ({', '.join(sorted(RESERVED))})")
        return v


class ChoiceField(_FieldBase):
    kind: Literal["choice"]
    choices: Any = None  # a list, {item: weight} or a source: checked by synthgen.choices, which reads it
    map: dict[str, dict] | None = None
    match: Literal["exact", "place"] = "exact"
    hints: ClassVar[dict[str, str]] = {**_FieldBase.hints, "map": "a mapping field -> {value: spelling}"}


class DateField(_FieldBase):
    kind: Literal["date"]
    min: IsoDate = None
    max: IsoDate = None


class YearsCheck(_Strict):
    field: NonEmpty
    until: Annotated[int, Field(ge=1, le=9999)] | None = None
    from_age: Annotated[int, Field(ge=1, le=100)] | None = None


class TopicCheck(_Strict):
    field: NonEmpty
    table: NonEmpty | None = None  # a shipped table (synthgen/data) whose row for the field's value says what it means
    column: NonEmpty | None = None
    min: Annotated[float, Field(ge=-1, le=1)] | None = None  # checks.TOPIC_MIN


class TextChecks(_Strict):
    """What a text must agree with in its record (synthgen/checks.py)."""
    mentions: list[NonEmpty] = []
    pronouns: NonEmpty | None = None
    years: NonEmpty | YearsCheck | None = None
    other_names: bool = False
    nationality: NonEmpty | None = None
    profanity: bool = False
    max_nonwords: Annotated[float, Field(ge=0, le=1)] | None = None
    topic: TopicCheck | None = None
    hints: ClassVar[dict[str, str]] = {"mentions": "a list of earlier fields' names", "pronouns": "a field name (female/male values)",
                                       "years": "a date field's name, or {field: NAME, until: YEAR, from_age: AGE}",
                                       "other_names": "true or false", "profanity": "true or false",
                                       "nationality": "a place field's name",
                                       "max_nonwords": "a share between 0 and 1",
                                       "topic": "{field: NAME, table: TABLE, column: COLUMN, min: COSINE}"}


class Context(_Strict):
    """A value the prompt may use that no field holds: a table's row for an earlier field's value."""
    builtin: NonEmpty  # a shipped table (synthgen/data): its first column holds the field's values
    by: NonEmpty  # the earlier (choice) field whose value picks the row
    hints: ClassVar[dict[str, str]] = {"builtin": "a shipped table's name (career_duties)", "by": "an earlier choice field's name"}


class TextField(_FieldBase):
    kind: Literal["text"]
    start: NonEmpty | None = None  # the answer's opening, rendered from the record; the model continues it
    context: dict[str, Context] | None = None  # {name}: a placeholder looked up by another field's value
    checks: TextChecks | None = None
    min_words: Annotated[int, Field(ge=0)] = 1
    max_words: Annotated[int, Field(ge=1)] | None = None
    sentences: Annotated[int, Field(ge=1)] | None = None
    reject: list[str] = []
    hints: ClassVar[dict[str, str]] = {**_FieldBase.hints, "reject": "a list of regular expressions",
                                       "context": "a mapping NAME: {builtin: TABLE, by: FIELD}"}

    @field_validator("max_words")
    @classmethod
    def _at_least_min(cls, v, info):
        lo = max(1, info.data.get("min_words", 1))
        if v is not None and v < lo:
            raise ValueError(f"must be an integer >= {lo}, got {v!r}")
        return v

    @field_validator("reject")
    @classmethod
    def _patterns(cls, v: list[str]) -> list[str]:
        for r in v:
            try:
                re.compile(r)
            except re.error as e:
                raise ValueError(f"pattern {r!r} is not a regular expression ({e})") from None
        return v


FIELD_MODELS = {"choice": ChoiceField, "date": DateField, "text": TextField}
NESTED = {"checks": TextChecks}
NESTED_MAPS = {"context": Context}  # a key whose values (one per name) are models of their own


class TemplateFile(_Strict):
    name: NonEmpty
    description: str = ""
    population: str = ""  # who the records are drawn from, in words: shown by the report
    system: str | None = None
    retries: Annotated[int, Field(ge=0, le=100)] = 3
    fields: Annotated[list[Annotated[Union[ChoiceField, DateField, TextField], Field(discriminator="kind")]],
                      Field(min_length=1)]
    hints: ClassVar[dict[str, str]] = {"name": "a non-empty string", "fields": "a non-empty list of field mappings"}


class SpecFile(_Strict):
    name: NonEmpty
    source: dict
    prompts: Annotated[list[NonEmpty], Field(min_length=1)]
    weighting: Literal["uniform", "frequency"] | Annotated[float, Field(ge=0, allow_inf_nan=False)] = "uniform"
    top_k: Annotated[int, Field(ge=1)] | None = None
    description: str = ""
    variables: dict[str, Annotated[list | dict, Field(min_length=1)]] | None = None
    hints: ClassVar[dict[str, str]] = {
        "name": "a non-empty string", "prompts": "a non-empty list of non-empty strings",
        "weighting": "uniform, frequency or a number >= 0",
        "variables": "a mapping name -> values: a non-empty list (or a mapping value -> the source's spelling)"}

    @field_validator("source")
    @classmethod
    def _one_kind(cls, v: dict) -> dict:
        if len(v.keys() & SOURCE_KINDS) != 1:
            raise ValueError(f"needs exactly one of {', '.join(sorted(SOURCE_KINDS))}")
        return v


# --- errors to one line -------------------------------------------------------------------------

def validate(model: type[_Strict], data, where: str):
    """`model` from a YAML mapping, or an InputError: `where` (the file), the field, the key, what it must be."""
    if not isinstance(data, dict):
        raise InputError(f"{where} must be a YAML mapping")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise InputError(_one_line(model, data, e.errors(), where)) from None


def _one_line(model, data: dict, errors: list[dict], where: str) -> str:
    def place(loc):  # (the model at loc, where it is, how long its prefix is)
        if model is TemplateFile and len(loc) >= 2 and loc[0] == "fields" and isinstance(loc[1], int):
            raw = data["fields"][loc[1]]
            name = raw.get("name") if isinstance(raw, dict) else None
            fwhere = f"{where}, field {name if isinstance(name, str) else loc[1] + 1!r}"
            return FIELD_MODELS.get(loc[2]) if len(loc) > 2 else None, fwhere, 3
        return model, where, 0

    extra = [e for e in errors if e["type"] == "extra_forbidden"]
    if extra:
        sub, at, n = place(extra[0]["loc"])
        loc = extra[0]["loc"]
        if len(loc) > n + 1 and loc[n] in NESTED:  # inside a key's own model: checks: {typo: ...}
            inner = NESTED[loc[n]]
            keys = [str(e["loc"][n + 1]) for e in extra if e["loc"][:n + 1] == loc[:n + 1]]
            return f"{at}: unknown key(s) {', '.join(keys)} in `{loc[n]}` (allowed: {', '.join(sorted(inner.model_fields))})"
        if len(loc) > n + 2 and loc[n] in NESTED_MAPS:  # context: {duty: {typo: ...}}
            return (f"{at}: unknown key {loc[n + 2]} in `{loc[n]}.{loc[n + 1]}` "
                    f"(allowed: {', '.join(sorted(NESTED_MAPS[loc[n]].model_fields))})")
        keys = [str(e["loc"][n]) for e in extra if e["loc"][:n] == extra[0]["loc"][:n]]
        others = {k: kind for kind, m in FIELD_MODELS.items() if m is not sub for k in m.model_fields
                  if sub in FIELD_MODELS.values() and k not in sub.model_fields}
        if keys[0] in others:
            return f"{at}: `{keys[0]}` is only for kind: {others[keys[0]]}"
        allowed = ", ".join(sorted(sub.model_fields))
        return f"{at}: unknown key(s) {', '.join(keys)} (allowed: {allowed})"
    missing = [e for e in errors if e["type"] == "missing"]
    if missing:
        sub, at, n = place(missing[0]["loc"])
        keys = [str(e["loc"][n]) for e in missing if e["loc"][:n] == missing[0]["loc"][:n]]
        return f"{at}: missing key(s) {', '.join(keys)}"
    e = errors[0]
    sub, at, n = place(e["loc"])
    if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
        return f"{at}: `kind` must be one of {', '.join(KINDS)}, got {e['ctx'].get('tag')!r}"
    if e["type"] in ("model_type", "model_attributes_type") or len(e["loc"]) <= n:
        return f"{at} must be a mapping"
    key, loc = str(e["loc"][n]), e["loc"][:n + 1]
    label, value = key, data_at(data, loc)
    if len(e["loc"]) > n + 1 and isinstance(value, dict) and e["loc"][n + 1] in value:  # one entry of a mapping
        label, value = f"{key}.{e['loc'][n + 1]}", value[e["loc"][n + 1]]
    if e["type"] == "value_error":
        return f"{at}: `{label}` {e['msg'].removeprefix('Value error, ')}"
    inner = NESTED.get(key)  # a key whose value is a model of its own (a text field's checks)
    if inner is not None and label != key and e["loc"][n + 1] in inner.hints:
        return f"{at}: `{label}` must be {inner.hints[e['loc'][n + 1]]}, got {value!r}"
    return f"{at}: `{label}` must be {_what(sub, key, e)}, got {value!r}"


def _what(model, key: str, e: dict) -> str:
    if key in model.hints:
        return model.hints[key]
    if e["type"] == "literal_error":
        return re.sub(r"'([^']*)'", r"\1", e["ctx"]["expected"])
    info = model.model_fields[key]
    numeric = _numeric(info.annotation, info.metadata)
    if numeric is None:
        return "a " + {"string_type": "string", "list_type": "list", "dict_type": "mapping", "bool_type": "boolean"}.get(
            e["type"], e["msg"].removeprefix("Input should be ").removeprefix("a valid "))
    kind, metadata = numeric
    bounds = [f"{'>=' if isinstance(m, annotated_types.Ge) else '<='} {m.ge if isinstance(m, annotated_types.Ge) else m.le}"
              for m in metadata if isinstance(m, (annotated_types.Ge, annotated_types.Le))]
    return f"a{'n integer' if kind is int else ' number'}" + (f" {' and '.join(bounds)}" if bounds else "")


def _numeric(annotation, metadata):
    """(int or float, its constraints) for an int/float annotation (maybe `| None`), else None."""
    import typing

    for arg in (annotation, *typing.get_args(annotation)):
        base, *meta = typing.get_args(arg) if typing.get_origin(arg) is Annotated else (arg,)
        if base in (int, float):
            return base, [m for x in meta for m in getattr(x, "metadata", [x])] or list(metadata)
    return None


def data_at(data, loc):
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        elif not (isinstance(part, str) and part in KINDS):  # a union's tag in the location
            break
    return data
