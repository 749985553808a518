"""Text checks (synthgen/checks.py) on hand-written sentences, the forced opening and retries from checks
on the fake engine, and a bad `checks:` in a template as one line."""

import textwrap

import pytest

from synthgen.checks import Checks, nonwords
from synthgen.engine import FakeEngine
from synthgen.errors import InputError
from synthgen.generate import Fill, run
from synthgen.output import plan_run, read_jsonl
from synthgen.template import load_template

JO = {"first_name": "Jo", "last_name": "Smith", "gender": "female", "birth_date": "1987-03-14",
      "birth_place": "Kallakurichi, India", "career": "Registered nurse"}


def fails(check: Checks, text: str, record=JO) -> str | None:
    why = check.failure(text, record)
    return why.split(":", 1)[0] if why else None


@pytest.mark.parametrize("text, verdict", [
    ("Jo Smith cared for patients in Kallakurichi.", None),
    ("JO SMITH cared for patients.", None),  # any case
    ("Jo cared for patients.", "mentions"),  # no surname
    ("Jonas Smithson cared for patients.", "mentions"),  # names inside other words are not the record's
    ("Joanne Smith cared for patients.", "mentions"),
])
def test_mentions_are_whole_words(text, verdict):
    assert fails(Checks(mentions=("first_name", "last_name")), text) == verdict


@pytest.mark.parametrize("text, gender, verdict", [
    ("Jo Smith helped her patients herself.", "female", None),
    ("Jo Smith helped his patients.", "female", "pronouns"),
    ("Jo Smith said he would help.", "female", "pronouns"),
    ("Jo Smith helped her patients.", "male", "pronouns"),
    ("Jo Smith, the shepherd, helped others.", "female", None),  # "he" inside "shepherd", "her" inside "others"
    ("Jo Smith's theory helped.", "female", None),
    ("Jo Smith helped his patients.", "nonbinary", None),  # a value without pronouns to check
])
def test_pronouns_agree_with_the_gender_field(text, gender, verdict):
    assert fails(Checks(pronouns="gender"), text, {**JO, "gender": gender}) == verdict


@pytest.mark.parametrize("text, verdict", [
    ("Jo Smith won a prize in 2010.", None),
    ("Jo Smith was active in the 1980s.", None),  # the decade she was born in
    ("Jo Smith was active in the 1970s.", "years"),
    ("Jo Smith won a prize in 1975.", "years"),
    ("Jo Smith will publish in 2031.", "years"),
    ("Jo Smith, born in 1985, won a prize.", "years"),
    ("Jo Smith, born on March 14, 1987, won a prize.", None),
    ("Jo Smith, the 82-year-old nurse, retired.", "years"),
    ("Jo Smith retired at the age of 38.", None),
    ("Jo Smith retired at the age of 45.", "years"),
    ("Jo Smith, born 1987-03-14, worked.", None),  # the ISO date's parts are not years
    ("Jo Smith treated 2500 patients.", None),  # years are 1000-2099: 2500 is a count
    ("Jo Smith treated 1200 patients.", "years"),  # ... and 1200 reads as a year, before 1987
    ("Jo Smith, born on the 17th of December 1987, won.", "years"),  # the birth year, another day
    ("Jo Smith, born on 14 March 1987, won.", None),
    ("Jo Smith, born on March 15, won.", "years"),  # "born on" a day without its year
    ("Jo Smith, born 1987-03-15, worked.", "years"),
    ("Jo Smith won a prize on December 17, 2010.", None),  # a date in another year: an event
    ("Jo Smith is a 28-year-old nurse.", "years"),  # said in the present: her age in 2026 (38 or 39)
    ("Jo Smith is a 39-year-old nurse.", None),
    ("Jo Smith was a 28-year-old nurse when she won.", None),  # in the past: any age she has reached
    ("Jo Smith has nursed for over 40 years.", "years"),  # longer than her life
    ("Jo Smith has nursed for 20 years.", None),
])
def test_years_fit_the_birth_date_and_the_present(text, verdict):
    assert fails(Checks(years="birth_date", until=2026), text) == verdict


@pytest.mark.parametrize("text, verdict", [
    ("Jo Smith has worked at the store since 1987.", "years"),  # the birth year, not her birth
    ("Jo Smith opened a clinic in 1996.", "years"),  # at 9
    ("Jo Smith opened a clinic in 2001.", None),  # at 14
    ("Jo Smith, born in 1987 in Ohio, opened a clinic in 2010.", None),  # the birth's own year
    ("Jo Smith, born on 1987-03-14 in Ohio, nursed.", None),
    ("Since her birth in 1987, Jo Smith has loved the sea.", None),
    ("Jo Smith grew up in the 1990s.", None),  # a decade: no event in it
])
def test_years_from_age_fail_an_event_in_the_first_years_of_life(text, verdict):
    """`years: {field, until, from_age: 14}`: a year the text gives must be at least 14 years after the
    birth year, unless the words before it say it is the birth's."""
    assert fails(Checks(years="birth_date", until=2026, from_age=14), text) == verdict
    assert fails(Checks(years="birth_date", until=2026), text) is None  # without from_age: all pass


@pytest.mark.parametrize("text, verdict", [
    ("Jo Smith met John at the hospital.", "other_names"),
    ("Jo Smith studied with Mary Johnson.", "other_names"),
    ("Jo Smith worked at the White House.", None),  # "the ...": a proper noun
    ("Jo Smith won the Nobel Prize.", None),
    ("Jo Smith lived in New York.", None),  # a run with a word that is no name: a place
    ("Jo Smith studied at Harvard University.", None),
    ("In 1999, Jo Smith moved to Kallakurichi.", None),  # a sentence's first word; the record's own place
    ("Jo Smith was a Registered Nurse.", None),  # the record's own career
    ("Jo Smith married Joseph.", "other_names"),
    ("Jo Smith helped Johnsonville grow.", None),  # a name inside a longer word
    ("Jo Smith nursed Tony Blair.", "other_names"),  # a first name and a surname
    ("Jo Smith worked with David Molesworth, a chemist.", "other_names"),  # a first name and a rare word
    ("Jo Smith planted the Rose Garden.", None),
    ("Jo Smith visited Victoria Falls.", None),  # a first name and a common English word: a place
    ("Jo Smith won a Grace Hopper Award.", None),  # ... or a prize
    ("Jo Smith, also known as Lance, won.", "other_names"),  # a first name alone, rare as an English word
    ("Jo Smith has two daughters: Kiera, 8, and Ann.", "other_names"),  # ... even after a colon
    ("Jo Smith moved to Memphis.", None),  # a place the geocoder knows, though also a first name
])
def test_other_names_are_names_from_the_lists_that_are_not_the_records(text, verdict):
    assert fails(Checks(other_names=True), text) == verdict


def test_profanity_and_non_words():
    assert fails(Checks(profanity=True), "Jo Smith was a fucking genius.") == "profanity"
    assert fails(Checks(profanity=True), "Jo Smith won the Nobel Prize for her work on killer whales.") is None
    assert nonwords("Jo Smith was a gamedekinesque nurse in Kallakurichi.", JO) == (4, ["gamedekinesque"])
    assert nonwords("Jo Smith was a gamedekinesque nurse in Kallakurichi.") == (8, ["gamedekinesque", "Kallakurichi"])
    assert fails(Checks(max_nonwords=0.2), "Jo Smith was a gamedekinesque nurse.") == "max_nonwords"  # 1 of 3
    assert fails(Checks(max_nonwords=0.5), "Jo Smith was a gamedekinesque nurse.") is None
    # a symbol is no word: an emoji (one run, with its joiners), a star; punctuation, dashes and currency are
    assert nonwords("Jo Smith, a nurse, 👬 Her work—in 2010, for $5 (or €5) at 90%—helps “all”… ★", JO) == (11, ["👬", "★"])  # not "nurse": hers
    assert nonwords("Jo Smith is a nurse 👩‍⚕️.", JO) == (3, ["👩\u200d⚕️"])


def test_the_first_failing_check_is_the_reason_and_results_list_every_check():
    c = Checks(mentions=("first_name",), pronouns="gender", years="birth_date", until=2026)
    text = "Jo Smith helped his patients in 1950."
    assert c.failure(text, JO) == "pronouns: 'his' in a female record"
    assert c.results(text, JO) == {"mentions": None, "pronouns": "'his' in a female record",
                                   "years": "1950 is before the birth year 1987"}
    assert c.names() == ["mentions", "pronouns", "years"]


NURSE = Checks(topic="career", topic_table=("career_duties", "duty"))
OPENING = "Jo Smith, a registered nurse from Kallakurichi, India,"


@pytest.mark.parametrize("written, verdict", [
    (" cared for patients in the city's hospital for thirty years.", None),
    (" taught nurses to monitor patients' conditions and give medications.", None),
    (" has achieved her dream.", "topic"),  # says nothing of the work
    (" does this work.", "topic"),
    (" has no other known relation in the world.", "topic"),
])
def test_topic_reads_what_the_model_wrote_after_the_opening(written, verdict):
    why = NURSE.failure(OPENING + written, JO, OPENING)
    assert (why and why.split(":", 1)[0]) == verdict, why
    # the opening is the record's: it names the career, and read with it every text would pass
    assert NURSE.failure(OPENING + " has achieved her dream.", JO) is None


def test_topic_is_the_same_number_in_any_order_and_without_a_table_compares_the_value_alone():
    from synthgen.checks import topic_similarity

    a = topic_similarity("cared for patients.", "Registered nurse")
    topic_similarity("has achieved her dream.", "Janitor")
    assert topic_similarity("cared for patients.", "Registered nurse") == a
    assert Checks(topic="career", topic_min=a + 0.01).failure("cared for patients.", JO).startswith("topic")
    assert Checks(topic="career", topic_min=a - 0.01).failure("cared for patients.", JO) is None
    assert NURSE.describe() == {"topic": {"field": "career", "min": 0.12, "table": "career_duties", "column": "duty"}}


BIO = """
name: bio
fields:
  - name: gender
    kind: choice
    choices: [female, male]
    decode: free
    prompt: "Pick a gender."
  - name: first_name
    kind: choice
    choices: [Jo, Sam]
    decode: free
    prompt: "Pick a name for a {gender} person."
  - name: story
    kind: text
    sentences: 1
    min_words: 3
    retries: 4
    prompt: "Write about {first_name}."
    start: "{first_name}"
    checks: {mentions: [first_name], pronouns: gender, max_nonwords: 0.3}
"""


def bio(tmp_path, text=BIO):
    p = tmp_path / "bio.yaml"
    p.write_text(textwrap.dedent(text))
    return load_template(p)


def answer(req):
    if req.prompt.startswith("Pick a gender"):
        return ["female", "male"][req.seed % 2]
    if req.prompt.startswith("Pick a name"):
        return ["Jo", "Sam"][req.seed % 2]
    assert req.prefill in ("Jo", "Sam")  # the opening goes to the engine as the reply's start
    return [" helped his friends.", " helped her friends.", " xqzt vbnm plok.", " was kind to everyone."][req.seed % 4]


def test_forced_opening_is_stored_whole_and_failed_checks_are_retried_with_counted_reasons(tmp_path):
    t = bio(tmp_path)
    s = run(t, FakeEngine(responder=answer), plan_run(t, tmp_path / "a.jsonl", 60, seed=1), 60, 1)
    rows = read_jsonl(tmp_path / "a.jsonl")
    texts = [r for r in rows if r["story"]]
    assert texts and all(r["story"].startswith(r["first_name"] + " ") for r in texts)
    assert all(("his" not in r["story"].split()) if r["gender"] == "female" else ("her" not in r["story"].split())
               for r in texts)
    assert all("xqzt" not in r["story"] for r in texts)
    assert s.rejected and set(k.split(": ")[1] for k in s.rejected if k.startswith("story")) <= {"pronouns", "max_nonwords"}
    assert s.rejected.get("story: pronouns", 0) > 0 and s.rejected.get("story: max_nonwords", 0) > 0
    retried = [r for r in rows if r["attempts"]["story"] > 1]
    assert retried  # some texts were written again
    # same seed => same file, retries from checks included
    run(t, FakeEngine(responder=answer), plan_run(t, tmp_path / "b.jsonl", 60, seed=1), 60, 1)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_a_text_whose_retries_run_out_is_null_with_its_check_as_reason(tmp_path):
    t = bio(tmp_path)
    eng = FakeEngine(responder=lambda r: answer(r) if not r.prompt.startswith("Write") else " helped his friends.")
    run(t, eng, plan_run(t, tmp_path / "o.jsonl", 10, seed=0), 10, 0, Fill())
    women = [r for r in read_jsonl(tmp_path / "o.jsonl") if r["gender"] == "female"]
    assert women and all(r["story"] is None and r["attempts"]["story"] == 5 for r in women)
    assert women[0]["errors"]["story"].startswith("pronouns: 'his' in a female record")


@pytest.mark.parametrize("checks, line", [
    ("{mentions: [surname]}", "field 'story': checks.mentions names 'surname', which is not an earlier field "
                              "(earlier fields: gender, first_name)"),
    ("{pronouns: sex}", "field 'story': checks.pronouns names 'sex', which is not an earlier field"),
    ("{years: {field: first_name, until: soon}}", "field 'story': `checks.years` must be a date field's name, "
                                                  "or {field: NAME, until: YEAR, from_age: AGE}, got {'field': 'first_name', 'until': 'soon'}"),
    ("{max_nonwords: 2}", "field 'story': `checks.max_nonwords` must be a share between 0 and 1, got 2"),
    ("{mentions: first_name}", "field 'story': `checks.mentions` must be a list of earlier fields' names, got 'first_name'"),
    ("{typo: true}", "unknown key(s) typo"),
    ("{mentions: [first_name]}\n    min_p: 1.5", "field 'story': `min_p` must be"),
    ("{topic: {field: career}}", "field 'story': checks.topic names 'career', which is not an earlier field"),
    ("{topic: {field: first_name, table: career_duties}}", "field 'story': checks.topic needs both `table` and `column`"),
    ("{topic: {field: first_name, table: jobs, column: duty}}", "field 'story': checks.topic: unknown table 'jobs'"),
    ("{topic: {field: first_name, table: career_duties, column: pay}}",
     "field 'story': checks.topic: table 'career_duties' has no column 'pay'"),
    ("{topic: {field: first_name, min: 2}}", "field 'story': `checks.topic` must be {field: NAME, table: TABLE, column: "
                                            "COLUMN, min: COSINE}"),
])
def test_a_bad_check_is_one_line(tmp_path, checks, line):
    with pytest.raises(InputError) as e:
        bio(tmp_path, BIO.replace("{mentions: [first_name], pronouns: gender, max_nonwords: 0.3}", checks))
    assert "\n" not in str(e.value) and line in str(e.value), str(e.value)


def test_a_start_that_names_a_later_field_is_one_line(tmp_path):
    with pytest.raises(InputError, match="start refers to {last_name}, which is not a field"):
        bio(tmp_path, BIO.replace('start: "{first_name}"', 'start: "{first_name} {last_name}"'))


def test_nationality_is_the_birth_places_country_or_heritage():
    """A text may call a person born in Boston American, African-American, of Mexican descent; not "a Canadian
    physician". A demonym that is the record's own value (the surname French) is not a nationality."""
    from synthgen.checks import Checks

    c = Checks(nationality="birth_place")
    boston = {"birth_place": "Boston, Massachusetts", "last_name": "Smith"}
    assert c.failure("Ann Smith is a Canadian physician.", boston) == "nationality: calls the person Canadian, born in United States"
    for ok in ("Ann Smith is an American hero.", "Ann Smith, an African-American nurse.", "Ann Smith, a Mexican American chef.",
               "Ann Smith was born to Chinese immigrants.", "Ann Smith, of Italian descent."):
        assert c.failure(ok, boston) is None, ok
    assert c.failure("Holly French is a teacher.", {"birth_place": "Boston, Massachusetts", "last_name": "French"}) is None
    assert c.failure("Li Wei is a Chinese engineer.", {"birth_place": "Beijing, China"}) is None
    assert c.failure("Li Wei is a Chinese engineer.", {"birth_place": "Atlantis, Nowhere"}) is None  # unknown place


def test_a_nationality_check_on_a_field_that_is_not_earlier_is_one_line():
    from synthgen.checks import from_spec
    from synthgen.errors import InputError

    with pytest.raises(InputError, match=r"^t\.bio: checks\.nationality names 'born_in', which is not an earlier field "
                                         r"\(earlier fields: name\)$"):
        from_spec({"nationality": "born_in"}, "t.bio", ["name"])


def test_a_value_used_as_a_word_lowercased_and_with_its_article(tmp_path):
    """`{x:lower}` and `{x:a}` put a list's capitalised value inside a sentence: "Registered nurse" ->
    "a registered nurse", "Office clerk" -> "an office clerk"; an acronym keeps its capitals."""
    t = bio(tmp_path, BIO.replace('start: "{first_name}"', 'start: "{first_name}, {gender:a} ({first_name:lower})"'))
    story = t.fields[-1]
    assert story.opening({"gender": "female", "first_name": "Jo"}) == "Jo, a female (jo)"
    assert story.opening({"gender": "Office clerk", "first_name": "CEO"}) == "CEO, an office clerk (CEO)"
    with pytest.raises(InputError) as e:
        bio(tmp_path, BIO.replace('start: "{first_name}"', 'start: "{first_name:upper}"'))
    assert "\n" not in str(e.value) and "{first_name:upper}: the specs are :.N" in str(e.value), str(e.value)


def test_reject_patterns_read_what_the_model_wrote_not_the_opening(tmp_path):
    """A record's value in the forced opening ("Walla Walla") cannot trip a reject pattern ("a word said twice")."""
    t = bio(tmp_path, BIO.replace('start: "{first_name}"', 'start: "{first_name},"\n    reject: ["\\\\b(\\\\w+) \\\\1\\\\b"]'))
    story, rec = t.fields[-1], {"gender": "female", "first_name": "Jo Jo"}
    assert story.parse(" she won a prize.", "stop", rec) == ("Jo Jo, she won a prize.", None)
    text, why = story.parse(" she won a prize prize.", "stop", rec)
    assert text is None and why.startswith("matches reject pattern"), why


@pytest.mark.parametrize("written, ok", [
    (" is remembered for the bowls she shaped for her town.", True),
    (" a founding member of the potters' guild, taught clay to three generations.", True),
    (" in 2010.", False),  # a fragment: nothing after the opening says what she did
    (" who shaped bowls for her town.", False),
    (" with a lifelong passion for clay.", False),
    (" where she was born.", False),
    (" In 1990 she opened a studio.", False),
    (" 1982-2021.", False),
    (" doing just that.", False),  # a participle, no verb
    (" having shaped bowls for her town.", False),
    (" shapes bowls in the studio she founded.", True),  # a verb, not a participle
    (" a trailblazing career, a testament to hard work.", False),  # a second apposition, no verb
    (" a legendary figure in the world of clay.", False),
    (" a true master of her craft, as the legend has it.", False),
    (" a pioneer in her field, holds the record for the largest kiln.", True),
])
def test_the_biography_rejects_a_fragment_after_its_opening(written, ok):
    """The biography's sentence must go on with what the person did (a verb), not a fragment that leaves the
    opening's "Ann Lee, an artist from Lima, Peru," without a predicate (~14 % of texts before the pattern)."""
    from synthgen.template import load_template

    f = load_template("biography").field("achievements")
    rec = {"gender": "female", "first_name": "Ann", "last_name": "Lee", "birth_date": "1950-02-03", "career": "Artist",
           "birth_place": "Lima, Peru"}
    text, why = f.parse(written, "stop", rec)
    assert (text is not None) == ok, why
    assert ok or why.startswith("matches reject pattern")
