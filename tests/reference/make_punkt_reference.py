"""NLTK's punkt sentence spans, as WhisperX computes them, for tests/punkt_reference.rs.

WhisperX (alignment.py) loads `nltk.data.load(f"tokenizers/punkt_tab/{lang}.pickle")` (NLTK swaps
the pickle for `PunktTokenizer(lang)`, which reads the punkt_tab files) and calls
`span_tokenize(segment_text)`. This script does exactly that on the files `models/fetch punkt`
wrote (the NLTK data path is a temporary directory holding a copy of models/punkt as
tokenizers/punkt_tab), for hand-written texts in every WhisperX punkt language, the speech manifest's transcripts, the
segment texts of tests/reference/data/transcribe_*.json, seeded random texts built from each
language's own abbreviations, collocations and sentence starters, and seeded "soup" (dense
punctuation, every kind of space, unusual letters and marks). It writes
tests/reference/data/punkt_spans.json: character offsets (Python str indices), with and without
`realign_boundaries`.

`--tables` instead writes engine/align/punkt/unicode_tables.rs: the `\\d` and `[^\\W\\d]` classes
of the `regex` module NLTK 3.10 compiles its patterns with (nltk/redos.py), as code point ranges
(the JSON records the same ranges so a unit test catches a table that was not regenerated).

Usage, from the repository root (standard library + nltk, nothing else):

    models/fetch punkt
    python3 -m venv .cache/punktvenv
    .cache/punktvenv/bin/pip install nltk==3.10.4 regex==2026.11.19
    .cache/punktvenv/bin/python tests/reference/make_punkt_reference.py --tables
    .cache/punktvenv/bin/python tests/reference/make_punkt_reference.py
"""

import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests/reference/data/punkt_spans.json"
TABLES = ROOT / "engine/align/punkt/unicode_tables.rs"
PUNKT_DIR = ROOT / "models/punkt"
MANIFEST = ROOT.parent / "shared/data/speech/manifest.json"
TRANSCRIBE_REFERENCES = [
    ROOT / "tests/reference/data/transcribe_tiny_en.json",
    ROOT / "tests/reference/data/transcribe_base.json",
]

NLTK_VERSION = "3.10.4"
REGEX_VERSION = "2026.11.19"
RANDOM_SEED = 20260514
RANDOM_TEXTS_PER_LANGUAGE = 16
SOUP_TEXTS = 400

# whisperx==3.8.6 whisperx/utils.py PUNKT_LANGUAGES; alignment.py uses
# PUNKT_LANGUAGES.get(model_lang, "english").
PUNKT_LANGUAGES = {
    "cs": "czech", "da": "danish", "de": "german", "el": "greek", "en": "english",
    "es": "spanish", "et": "estonian", "fi": "finnish", "fr": "french", "it": "italian",
    "nl": "dutch", "no": "norwegian", "pl": "polish", "pt": "portuguese", "sl": "slovene",
    "sv": "swedish", "tr": "turkish", "ml": "malayalam", "ru": "russian",
}
# Codes whose mapping the Rust side must reproduce (WhisperX's languages and some that fall back).
LANGUAGE_CODES = sorted(PUNKT_LANGUAGES) + ["ja", "zh", "ar", "uk", "hu", "nn", "", "EN", "english", "xx"]

COMMON = [
    "",
    " ",
    "   \n\t ",
    ".",
    "...",
    "?!",
    ". . .",
    "!!! ??? ...",
    "—",
    "-- --",
    "( ) [ ] { }",
    '" \' "',
    "a",
    "Hello",
    "Hello.",
    "Hello. ",
    " Hello. World.",
    "Hello world. This is a test.",
    "Hello world.This is a test.",
    "Hello world!This is a test.",
    "Is it? Yes! No. Maybe...",
    "Really?! Yes.",
    "What?!? Who!!! Why???",
    "Wait... what? Okay.",
    "Wait . . . what? Okay.",
    "Wait .. what",
    "One.  Two.   Three.\n\nFour.\n",
    "Line one.\nLine two.\r\nLine three.\rLine four.",
    "Tab.\tSeparated.\vVertical.\fFeed.",
    "End with spaces.   ",
    "\n\nLeading newlines. And more.",
    "(Sent1.) Sent2.",
    "He said \"Stop.\" Then he left.",
    "He said 'Stop.' Then he left.",
    "She wrote (see above.) Then left.",
    "[Note.] Another.",
    "{Brace.} Next one.",
    "Quote.\" Next.",
    "Quote.\"\" Next.",
    "Quote.\")] Next.",
    "Closing.)-- Next.",
    "Closing.)--Next.",
    "Closing.\")\nNext.",
    "Closing.)",
    "Closing.) ",
    "A.) B.) C.)",
    "“Curly.” Next sentence.",
    "‘Single curly.’ Next sentence.",
    "«Guillemets.» Next sentence.",
    "»Reversed.« Next.",
    "Ends with a period.)",
    "x. y. z.",
    "X. Y. Z.",
    "1. 2. 3.",
    "It costs 3.5 dollars. Then 4.25. Then .5 more.",
    "Call 555-1234. Or 1,000.00 now.",
    "-5. Negative. -3.5. More.",
    "Version 2.0.1 is out. Update now.",
    "The year was 1999. It was cold.",
    "In 1999. the end.",
    "He came 3rd. Then left.",
    "Score: 10. Next.",
    "a.b.c. Next.",
    "e.g. this. i.e. that.",
    "etc. And so on.",
    "etc.) And so on.",
    "(etc.). Next.",
    "Ellipsis… unicode. Next.",
    "Wow..... Next.",
    "Wow.... next.",
    "Wow... next.",
    "Wow... Next.",
    "word. lowercase start. Another.",
    "word.lowercase. Next.",
    "a-b. c-d. E-F.",
    "semi;colon. Comma, here. Colon: there.",
    "Hmm., odd. Next.",
    "Hmm.; odd. Next.",
    "Hmm.: odd. Next.",
    "Hmm. , odd.",
    "Hmm. ; odd.",
    "Hmm. ? odd.",
    "Email me at a.b@c.com. Thanks.",
    "See http://x.org/a.html. Thanks.",
    "#tag. @user. *star. &amp.",
    "`tick. `Tick.",
    "it's. 'Tis. Ok.",
    "Hi._ Next.",
    "A. B",
    "A.B",
    "A. b",
    "a. B",
    "?",
    "?.",
    ".?",
    "a?b. C.",
    "a!b!c. D.",
    "a. .b. C.",
    "Odd . spacing . Here .",
    "Dash -- dash. Next --",
    "Dash--dash. Next.",
    "End.--Start.",
    "End.---Start.",
    "Non\u00a0breaking.\u00a0Space. Next.",
    "Thin\u2009space.\u2009Next.",
    "Ideographic\u3000space.\u3000Next.",
    "Sep\u001cchar.\u001c Next.\u001f",
    "\u001c",
    "Line\u2028sep. Para\u2029sep. Next.",
    "Zero\u200bwidth. Next.",
    "Emoji 😀. Next 🎉! Done.",
    "日本語の文。次の文。English. Next.",
    "中文句子。第二句. Third.",
    "Ελληνικά. Κείμενο. Λέξη.",
    "Русский текст. Ещё одно. Т.е. и т.д. Конец.",
    "العربية. نص. Next.",
    "हिंदी पाठ। दूसरा. Next.",
    "Malayalam മലയാളം. അടുത്തത്. Next.",
    "Combining e\u0301. Next.",
    "\u0301. Next.",
    "ǅ. Titlecase. ǅungla. Next.",
    "Ⅻ. Roman. Next.",
    "². Superscript. ½. Half. Next.",
    "٣. Arabic digit. ٣٫٥. Next.",
    "൧. Malayalam digit. Next.",
    "İstanbul. İzmir. ılık. Next.",
    "ΣΟΦΟΣ. ΛΟΓΟΣ. Next.",
    "Ⓐ. Circled. Next.",
    "_. Underscore. x_. Next.",
    "##number##. Literal. Next.",
    "The U.S. economy. It grew.",
    "Mr. Smith went to Washington. He arrived.",
    "Mrs. Jones and Dr. Brown met at 5 p.m. They talked.",
    "Prof. X and Sen. Y. They met.",
    "It was Jan. 5. The end.",
    "He lives in the U.S.A. Now he works.",
    "The U.S.S.R. collapsed. Then what?",
    "J. R. R. Tolkien wrote books. He died.",
    "John F. Kennedy spoke. Everyone listened.",
    "I met J. Smith. And B. Jones.",
    "Johann S. Bach composed. Ok.",
]

HAND_WRITTEN = {
    "english": [
        "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
        " Mr. Smith bought cheapsite.com for 1.5 million dollars, i.e. he paid a lot for it. Did he mind? Adam Jones Jr. thinks he didn't. In any case, this isn't true... Well, with a probability of .9 it isn't.",
        "Dr. Watson arrived at 10 a.m. He was late. Inc. reported earnings. Corp. profits fell.",
        "The company (Acme Inc.) grew. However, it failed.",
        "Gen. Motors announced. Sales fell 3.5%. Analysts were surprised.",
        "They went to St. Louis. It was far.",
        "Apple Inc. said. The Inc. was big.",
        "Mr. and Mrs. Smith. They left.",
        "in 1987. However, he left.",
        "on Dec. 12. The market fell.",
        "No. 5 is the answer. No. It is not.",
        "vs. them. Vs. Them.",
        "The U.S. Army. the U.S. army.",
        "He said, \"It's done.\" She said, \"Not yet.\"",
        "(This is a test.) (And another.)",
        "What a day!!! I'm tired.",
        "Very bad acting!!! I promise.",
        "Is this ok?? Yes.",
        "b. Stewart spoke. j. Walter listened.",
        "B. Smith. J. Aron. I. Magnin.",
        "He scored 12. International news followed.",
        "Room 101. Business is good.",
        "1. Introduction. 2. Methods.",
        "The ratio is 3:1. Good.",
        "Call me at 5 p.m. tomorrow. Ok.",
        "Call me at 5 P.M. Tomorrow.",
        "Ms. Lee and Messrs. Brown. Then.",
        "Sept. 11. Sept. Eleven.",
        "He works at Ltd. companies. Ltd. Companies.",
        "The a.m. show. The A.M. Show.",
        "She has a Ph.D. in physics. Great.",
        "ph.d. students. Ph.D. Students.",
        "U.K. U.N. U.S.",
        "lowercase after abbreviation: the dr. said no.",
        "The end. the beginning.",
        "The end. The beginning.",
        "The end. Most people agree.",
        "The est. value. Most people agree.",
        "He was sr. VP. Most agree.",
        "Co. Ltd. Inc. Corp.",
        "That's it... The end.",
        "That's it... the end.",
        "That's it . . . The end.",
        "The a.m. Most people. The p.m. He said.",
        "I saw Mt. Everest. It was big.",
        "x-ray. X-Ray. pre-dr. Next.",
        "Go to the Rd. Then turn.",
        "The Jr. High. Then.",
        "This is it. \"Quoted start.\" Next.",
        "He asked 'why?' She said 'because.' Fine.",
        "Unless a system is established for the frequent formal review of activities thereunder. in this regard",
        " Hello, hello, hello. I didn't know that you're doing this. Well, ok.",
        " Can pair's lack full flavor.",
        " Can Pairs Lackful Flavor?",
    ],
    "german": [
        "Am 3. Mai fand die Sitzung statt. Sie dauerte lange.",
        "Das war am 24. Dezember. Dann kam Silvester.",
        "Er wurde am 1. Januar 1990 geboren. Seine Mutter freute sich.",
        "Die 2. Auflage erschien. Sie war besser.",
        "Er kam als 3. ins Ziel. Danach feierte er.",
        "Der 3. Oktober ist ein Feiertag. Viele haben frei.",
        "Herr Dr. Müller kam. Er war pünktlich.",
        "Das ist z.B. ein Test. Und usw. noch mehr.",
        "Ca. 500 Leute kamen. Sie blieben lange.",
        "Die Firma GmbH wurde gegründet. Sie wuchs.",
        "Prof. Dr. Schmidt sprach. Alle hörten zu.",
        "Es kostet 3,5 Mio. Euro. Das ist viel.",
        "Seit dem 19. Jh. gibt es das. Heute noch.",
        "Vgl. S. 12 f. Dort steht es.",
        "Der Bus fährt um 8 Uhr. Er ist oft zu spät.",
        "Die Straße ist lang. Über die Brücke geht es weiter.",
        "Wir trafen uns in der Str. Dann gingen wir.",
        "Ich habe es gesehen. aber nicht verstanden.",
        "Was? Wirklich! Ja.",
        "Er sagte: „Komm her.“ Dann ging er.",
        "Nr. 5 ist richtig. Nein.",
        "Bundesrat lehnte ab. Bundesrat Stich sprach.",
        "Am 1. 2. 3. Mai.",
    ],
    "french": [
        "M. Dupont est arrivé. Il était en retard.",
        "Mme Martin parle. Elle a raison.",
        "Le 1er janvier. C'est l'an nouveau.",
        "Voir p. 12. C'est là.",
        "C'est la vie, n'est-ce pas ? Oui.",
        "Il a dit : « Bonjour. » Puis il est parti.",
        "Il y avait env. 300 personnes. Elles sont restées.",
        "Le XXe s. fut violent. Le suivant aussi.",
        "Quoi ?! Vraiment ! D'accord.",
        "Paris, etc. Et ensuite ?",
        "J.-P. Sartre écrivait. Beaucoup.",
        "Le 3 mai. Ensuite le 4.",
    ],
    "spanish": [
        "¿Dónde está la biblioteca? Está allí.",
        "¡Hola! ¿Qué tal? Bien.",
        "El Sr. García llegó. La Sra. López también.",
        "Eran aprox. 20 personas. Todas felices.",
        "Vive en la C. Mayor. Es bonita.",
        "Ud. tiene razón. Gracias.",
        "Pág. 5. Lee eso.",
        "Era el 3 de mayo. Hacía calor.",
    ],
    "italian": [
        "Il sig. Rossi è arrivato. Era tardi.",
        "Il dott. Bianchi parla. Tutti ascoltano.",
        "Ecc. ecc. Basta così.",
        "Il 3. maggio. Poi il 4.",
        "Che cosa? Davvero! Sì.",
        "La S.p.A. è grande. Lo è.",
    ],
    "portuguese": [
        "O Sr. Silva chegou. Estava atrasado.",
        "A Dra. Souza falou. Todos ouviram.",
        "Custa R$ 3,50. É barato.",
        "Av. Paulista é longa. Muito longa.",
        "Ex. 1. Veja isto.",
        "Você vem? Sim! Ótimo.",
    ],
    "dutch": [
        "Dhr. Jansen kwam. Hij was laat.",
        "Het is o.a. een test. Ook d.w.z. meer.",
        "Mevr. de Vries sprak. Iedereen luisterde.",
        "Op 3 mei. Daarna 4 mei.",
        "Blz. 12. Zie daar.",
        "'s Morgens. 's Avonds.",
    ],
    "danish": [
        "Hr. Hansen kom. Han var sen.",
        "Det er bl.a. en test. Osv. osv.",
        "Den 3. maj. Så den 4.",
        "Ca. 200 mennesker. De blev.",
        "Kl. 8 startede vi. Det gik godt.",
    ],
    "norwegian": [
        "Hr. Olsen kom. Han var sen.",
        "Det er bl.a. en test. Osv. osv.",
        "Den 17. mai er nasjonaldag. Alle feirer.",
        "Ca. 200 mennesker. De ble.",
        "Kl. 8 startet vi. Det gikk bra.",
    ],
    "swedish": [
        "Hr. Svensson kom. Han var sen.",
        "Det är bl.a. ett test. Osv. osv.",
        "Den 6. juni är nationaldag. Alla firar.",
        "Ca. 200 människor. De stannade.",
        "Kl. 8 började vi. Det gick bra.",
        "T.ex. detta. Så var det.",
    ],
    "finnish": [
        "Hra Virtanen tuli. Hän oli myöhässä.",
        "Se on mm. testi. Jne. jne.",
        "6. joulukuuta on itsenäisyyspäivä. Kaikki juhlivat.",
        "N. 200 ihmistä. He jäivät.",
        "Klo 8 aloitimme. Se meni hyvin.",
        "Esim. tämä. Niin se oli.",
    ],
    "estonian": [
        "Hr. Tamm tuli. Ta hilines.",
        "See on nt. test. Jne. jne.",
        "24. veebruar on vabariigi aastapäev. Kõik tähistavad.",
        "U. 200 inimest. Nad jäid.",
        "Kell 8 alustasime. Läks hästi.",
    ],
    "czech": [
        "Pan Novák přišel. Byl pozdě.",
        "Je to např. test. Atd. atd.",
        "28. října je svátek. Všichni slaví.",
        "Cca. 200 lidí. Zůstali.",
        "Prof. Dvořák mluvil. Všichni poslouchali.",
        "Č. 5 je správně. Ne.",
    ],
    "polish": [
        "Pan Kowalski przyszedł. Był spóźniony.",
        "To jest np. test. Itd. itd.",
        "11 listopada to święto. Wszyscy świętują.",
        "Ok. 200 osób. Zostały.",
        "Prof. Nowak mówił. Wszyscy słuchali.",
        "Ul. Długa 5. Tam mieszkam.",
        "W 1918 r. Polska odzyskała niepodległość. To ważne.",
    ],
    "slovene": [
        "G. Novak je prišel. Bil je pozen.",
        "To je npr. test. Itd. itd.",
        "25. junij je praznik. Vsi praznujejo.",
        "Pribl. 200 ljudi. Ostali so.",
        "Dr. Kovač je govoril. Vsi so poslušali.",
    ],
    "greek": [
        "Ο κ. Παπαδόπουλος ήρθε. Ήταν αργά.",
        "Είναι π.χ. ένα τεστ. Κλπ. κλπ.",
        "Η 25η Μαρτίου είναι γιορτή. Όλοι γιορτάζουν.",
        "Περ. 200 άνθρωποι. Έμειναν.",
        "Τι; Αλήθεια! Ναι.",
        "ΟΔΟΣ. ΣΟΦΟΣ. Τέλος.",
        "Ο Δρ. Γεωργίου μίλησε. Όλοι άκουσαν.",
    ],
    "turkish": [
        "Sn. Yılmaz geldi. Geç kalmıştı.",
        "Bu örn. bir test. vb. vb.",
        "29 Ekim bayramdır. Herkes kutlar.",
        "Yak. 200 kişi. Kaldılar.",
        "Prof. Dr. Öztürk konuştu. Herkes dinledi.",
        "İstanbul büyük. İzmir de. Işık yandı.",
        "Ne? Gerçekten! Evet.",
    ],
    "russian": [
        "Г-н Иванов пришёл. Он опоздал.",
        "Это т.е. тест. И т.д. и т.п.",
        "9 мая праздник. Все празднуют.",
        "Ок. 200 человек. Они остались.",
        "Проф. Петров говорил. Все слушали.",
        "Ул. Ленина, д. 5. Там я живу.",
        "В 1918 г. всё изменилось. Это важно.",
        "Что? Правда! Да.",
        "А.С. Пушкин писал. Много.",
        "foo-. Bar.",
    ],
    "malayalam": [
        "ഇത് ഒരു വാക്യമാണ്. ഇത് മറ്റൊന്നാണ്.",
        "ഡോ. രാമൻ വന്നു. അദ്ദേഹം വൈകി.",
        "എന്ത്? ശരിക്കും! അതെ.",
        "ശ്രീ. കൃഷ്ണൻ സംസാരിച്ചു. എല്ലാവരും കേട്ടു.",
        "1. ഒന്ന്. 2. രണ്ട്.",
        "മലയാളം. English sentence. Next.",
    ],
}

# Building blocks for the seeded random texts (besides each language's own parameter words).
RANDOM_PUNCT = [".", ".", ".", "?", "!", "...", "?!", ". . .", "..", ",", ";", ":", "--", "-"]
RANDOM_CLOSERS = ["", "", "", ")", "\"", "'", "”", "»", ")\"", "]", "}", "’"]
RANDOM_OPENERS = ["", "", "", "(", "\"", "'", "“", "«", "[", "‘"]
RANDOM_SPACES = [" ", " ", " ", " ", "  ", "\n", "\n\n", "\t", "\u00a0", " \n ", "\r\n", "\u2009", "\u001c "]
# Character soup: dense punctuation, every kind of space, letters whose case or class is unusual.
SOUP_PUNCT = ["--", "...", ". .", "?!", ").", ".)", ".\"", ").\""] + list(".?!.,;:-\"'()[]{}*@&#`_/%$+=<>|~^\\‘’“”«»…–—")
SOUP_SPACES = [" ", " ", " ", "\n", "\t", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0",
               "\u2028", "\u2029", "\u3000", "\u2009", "\u200b", "\ufeff"]
SOUP_LETTERS = list("abcxyzABCXYZ0123456789éÉßΣσςİıǅǄǆ²½Ⅻ٣൧০中日😀ÆæØøÅåÄäÖöÜüŁłŠšŐőÇçĞğŞşΑαΩωЖжЯяഅആ"
                    "\u0301\u0308\u0d3e\u0d4d\u200c\u200dⒶⓐ")
RANDOM_WORDS = ["3.5", "1999", "12", "-4", ".9", "1,000", "2.0.1", "x", "I", "A", "b", "Zz", "e\u0301", "ǅ",
                "😀", "中", "Ω", "σ", "Σ", "ß", "İ", "_", "#", "@", "&", "*", "٣", "²", "a-b", "x.y"]


def write_tables():
    import regex

    def ranges(rx):
        out, start = [], None
        for c in range(0x110001):
            ok = c < 0x110000 and rx.match(chr(c)) is not None
            if ok and start is None:
                start = c
            if not ok and start is not None:
                out.append((start, c - 1))
                start = None
        return out

    tables = {
        "REGEX_DECIMAL": (r"\d", ranges(regex.compile(r"\d"))),
        "REGEX_WORD_NOT_DIGIT": (r"[^\W\d]", ranges(regex.compile(r"[^\W\d]"))),
    }
    lines = [
        "//! Generated by tests/reference/make_punkt_reference.py --tables: do not edit.",
        f"//! Character classes of the `regex` module {regex.__version__} (NLTK {NLTK_VERSION} compiles",
        "//! punkt's patterns with it, nltk/redos.py), as sorted inclusive code point ranges.",
        "",
    ]
    for name, (pattern, rs) in tables.items():
        lines.append(f"/// `{pattern}` ({len(rs)} ranges).")
        lines.append("#[rustfmt::skip]")
        lines.append(f"pub(super) const {name}: &[(u32, u32)] = &[")
        row = []
        for lo, hi in rs:
            row.append(f"(0x{lo:x}, 0x{hi:x}),")
            if len(row) == 6:
                lines.append("    " + " ".join(row))
                row = []
        if row:
            lines.append("    " + " ".join(row))
        lines.append("];")
        lines.append("")
    TABLES.write_text("\n".join(lines))
    return {name.lower(): [list(r) for r in rs] for name, (_, rs) in tables.items()}


def transcripts():
    """The manifest's reference texts and every segment text of the transcribe references."""
    texts = []
    if MANIFEST.is_file():
        for entry in json.loads(MANIFEST.read_text()):
            if entry.get("text"):
                texts.append(entry["text"])
    for path in TRANSCRIBE_REFERENCES:
        if not path.is_file():
            continue
        for rec in json.loads(path.read_text())["recordings"]:
            for result in rec["results"].values():
                segments = [seg["text"] for seg in result["segments"]]
                texts.extend(segments)
                texts.append(result["text"])
    seen, out = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def random_texts(lang, rng):
    d = PUNKT_DIR / lang
    def lines(name):
        text = (d / name).read_text(encoding="utf-8")
        return [x for x in text.split("\n") if x]
    abbrevs = lines("abbrev_types.txt")
    starters = lines("sent_starters.txt")
    collocs = [tuple(x.split("\t")) for x in lines("collocations.tab")]
    ortho = [x.split("\t")[0] for x in lines("ortho_context.tab")]
    rng.shuffle(ortho)
    ortho = ortho[:400]

    def case(w):
        r = rng.random()
        if r < 0.4:
            return w[:1].upper() + w[1:]
        if r < 0.5:
            return w.upper()
        return w

    def word():
        r = rng.random()
        if r < 0.25 and abbrevs:
            return case(rng.choice(abbrevs)) + "."
        if r < 0.35 and starters:
            return case(rng.choice(starters))
        if r < 0.45 and collocs:
            a, b = rng.choice(collocs)
            a = "12" if a == "##number##" else a
            return case(a) + "." + rng.choice(RANDOM_SPACES) + case(b)
        if r < 0.55:
            return case(rng.choice(RANDOM_WORDS))
        if r < 0.62:
            return rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") + "."
        return case(rng.choice(ortho)) if ortho else "word"

    out = []
    for _ in range(RANDOM_TEXTS_PER_LANGUAGE):
        parts = [rng.choice(["", "", " ", "\n"])]
        for _ in range(rng.randint(1, 14)):
            parts.append(rng.choice(RANDOM_OPENERS) + word())
            if rng.random() < 0.45:
                parts.append(rng.choice(RANDOM_PUNCT) + rng.choice(RANDOM_CLOSERS))
            parts.append(rng.choice(RANDOM_SPACES))
        if rng.random() < 0.5:
            parts[-1] = rng.choice(["", " ", "  ", "\n"])
        out.append("".join(parts))
    return out


def soup_texts(languages, rng):
    """Short texts of characters and pieces mixed at random, with each language's own words."""
    words = {}
    for lang in languages:
        d = PUNKT_DIR / lang
        found = []
        for name in ["abbrev_types.txt", "sent_starters.txt"]:
            found += [x for x in (d / name).read_text(encoding="utf-8").split("\n") if x]
        found += [x.split("\t")[0] for x in (d / "ortho_context.tab").read_text(encoding="utf-8").split("\n")[:200] if x]
        words[lang] = found or ["word"]
    out = []
    for _ in range(SOUP_TEXTS):
        lang = rng.choice(languages)
        parts = []
        for _ in range(rng.randint(0, 25)):
            r = rng.random()
            if r < 0.3:
                w = rng.choice(words[lang])
                parts.append(w[:1].upper() + w[1:] if rng.random() < 0.45 else w)
            elif r < 0.5:
                parts.append(rng.choice(SOUP_PUNCT) * rng.choice([1, 1, 1, 2, 3]))
            elif r < 0.7:
                parts.append(rng.choice(SOUP_SPACES) * rng.choice([1, 1, 2]))
            elif r < 0.85:
                parts.append(rng.choice(SOUP_LETTERS))
            elif r < 0.92:
                parts.append(". " * rng.randint(1, 4))
            else:
                parts.append(str(rng.randint(0, 3000)) + rng.choice([".", ",", "", ".5", "-"]))
        out.append((lang, "".join(parts)))
    return out


def main():
    if sys.argv[1:] == ["--tables"]:
        write_tables()
        print(f"wrote {TABLES}")
        return
    import nltk
    import nltk.data
    import regex

    assert nltk.__version__ == NLTK_VERSION, nltk.__version__
    assert regex.__version__ == REGEX_VERSION, regex.__version__
    if not (PUNKT_DIR / ".complete").is_file():
        sys.exit("run models/fetch punkt first")

    with tempfile.TemporaryDirectory() as tmp:
        # a copy: NLTK's pathsec refuses files reached through a link out of its data root
        shutil.copytree(PUNKT_DIR, Path(tmp) / "tokenizers/punkt_tab")
        nltk.data.path[:] = [tmp]
        languages = sorted(set(PUNKT_LANGUAGES.values()))
        splitters = {lang: nltk.data.load(f"tokenizers/punkt_tab/{lang}.pickle") for lang in languages}

        rng = random.Random(RANDOM_SEED)
        cases = []

        def add(lang, text, group):
            sp = splitters[lang]
            cases.append({
                "language": lang,
                "group": group,
                "text": text,
                "spans": [list(s) for s in sp.span_tokenize(text)],
                "spans_unaligned": [list(s) for s in sp.span_tokenize(text, realign_boundaries=False)],
            })

        for text in COMMON:
            add("english", text, "common")
        for lang in languages:
            for text in HAND_WRITTEN.get(lang, []):
                add(lang, text, "hand_written")
            # the shared texts in every other language too: the parameters differ
            if lang != "english":
                for text in COMMON[::7]:
                    add(lang, text, "common")
        for text in transcripts():
            add("english", text, "transcript")
        for lang in languages:
            for text in random_texts(lang, rng):
                add(lang, text, "random")
        for lang, text in soup_texts(languages, rng):
            add(lang, text, "soup")

    files = {}
    for lang in languages:
        for f in sorted((PUNKT_DIR / lang).iterdir()):
            files[f"{lang}/{f.name}"] = hashlib.sha256(f.read_bytes()).hexdigest()

    out = {
        "generator": "tests/reference/make_punkt_reference.py",
        "versions": {
            "python": sys.version.split()[0],
            "unicodedata": unicodedata.unidata_version,
            "nltk": nltk.__version__,
            "regex": regex.__version__,
        },
        "call": "nltk.data.load(f'tokenizers/punkt_tab/{lang}.pickle').span_tokenize(text[, realign_boundaries=False])",
        "offsets": "character (Python str) indices",
        "punkt_tab_sha256": files,
        "language_map": {code: PUNKT_LANGUAGES.get(code, "english") for code in LANGUAGE_CODES},
        "cases": cases,
        "unicode_tables": write_tables(),
    }
    OUT.write_text(json.dumps(out, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(cases)} texts")


if __name__ == "__main__":
    main()
