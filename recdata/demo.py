"""The bundled demo dataset: a hand-written film catalog and generated users.

`recdata/demo/items.csv` lists real, well-known films (id, title, year, genres, director and a
one-sentence description written for this project). The users are synthetic: each one mixes a
few taste personas (sci-fi fan, horror buff, ...) with individual noise, and watches films
drawn from that preference times a popularity prior. Histories carry sequential structure:
franchises are usually started at part one and the next part often follows right away, so
sequence-aware models have something to learn. Ratings rise with the user's affinity for the
film. Everything is drawn from one `numpy` Generator, so a seed always gives the same data.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import ConfigError, DataError
from recdata.dataset import Dataset, Item, User

DATASET_NAME = "demo"
DEFAULT_USERS = 300
DEFAULT_SEED = 2024
DEMO_USER_ID = "u001"
"""The showcase user: always generated as a clear sci-fi fan with a long history."""

GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
    "Film-Noir",
)
ITEM_COLUMNS = ("id", "title", "year", "genres", "director", "description")
VALUE_SEPARATOR = "|"

# Preference model. An unlisted genre weighs BASE_GENRE_WEIGHT for a persona; an item's genre
# affinity blends its best-liked genre with the mean over its genres.
BASE_GENRE_WEIGHT = 0.08
BEST_GENRE_SHARE = 0.6
DIRECTOR_BOOST = 2.5
TASTE_SHARPNESS = 3.0  # exponent on affinity when drawing what to watch
POPULARITY_SIGMA = 0.8  # spread of the log-normal popularity prior
GENRE_NOISE_SIGMA = 0.25  # per-user tweak of each genre
ITEM_NOISE_SIGMA = 0.15  # per-user, per-item idiosyncrasy
DOMINANT_SHARE = (0.55, 0.85)  # weight of the dominant persona in a user's mixture
SECONDARY_CONCENTRATION = 0.5  # Dirichlet concentration of the remaining weight

# Sequential behaviour.
START_FRANCHISE_AT_FIRST_UNSEEN = 0.85  # a later part drawn first is swapped for the earliest
CONTINUE_AFTER_LIKED = 0.7  # next part right away after a rating >= 3
CONTINUE_AFTER_DISLIKED = 0.15

# History lengths and time.
MIN_HISTORY, MAX_HISTORY = 8, 60
MEDIAN_HISTORY = 20
SHOWCASE_HISTORY = 48
SHOWCASE_DOMINANT_SHARE = 1.0
START_EPOCH = 1_704_672_000  # 2024-01-08 00:00 UTC
START_SPREAD_DAYS = 45
MEAN_GAP_HOURS = 36.0
MEAN_BINGE_GAP_HOURS = 10.0
MIN_GAP_SECONDS = 1_800

# Ratings: 1 + 4 * (affinity relative to the user's favourite) ** RATING_CURVE, plus noise.
RATING_CURVE = 0.9
USER_BIAS_SIGMA = 0.35
RATING_NOISE_SIGMA = 0.55

DAY = 86_400
HOUR = 3_600

WORLD_CINEMA_DIRECTORS = frozenset(
    {
        "Akira Kurosawa",
        "Andrei Tarkovsky",
        "Asghar Farhadi",
        "Bong Joon-ho",
        "Céline Sciamma",
        "Elem Klimov",
        "Federico Fellini",
        "François Truffaut",
        "Giuseppe Tornatore",
        "Ingmar Bergman",
        "Jacques Demy",
        "Jean Cocteau",
        "Jean Renoir",
        "Jean-Pierre Jeunet",
        "Krzysztof Kieślowski",
        "Lars von Trier",
        "Park Chan-wook",
        "Roberto Benigni",
        "Ryusuke Hamaguchi",
        "Vittorio De Sica",
        "Wong Kar-wai",
        "Yasujirō Ozu",
        "Alain Resnais",
        "Werner Herzog",
        "Florian Henckel von Donnersmarck",
        "Isao Takahata",
    }
)


@dataclass(frozen=True)
class Persona:
    """A taste: weights per genre (0..1), multipliers per decade (1 when absent), favourite
    directors, and the share of users whose dominant persona it is."""

    name: str
    genres: Mapping[str, float]
    share: float
    decades: Mapping[str, float] = field(default_factory=dict)
    directors: frozenset[str] = frozenset()


_OLD = {"1930s": 0.2, "1940s": 0.2, "1950s": 0.25, "1960s": 0.35, "1970s": 0.55}

PERSONAS: tuple[Persona, ...] = (
    Persona(
        "sci-fi fan",
        {
            "Sci-Fi": 1.0,
            "Adventure": 0.45,
            "Action": 0.4,
            "Mystery": 0.35,
            "Thriller": 0.3,
            "Fantasy": 0.25,
        },
        share=0.12,
        decades={"1930s": 0.5, "1940s": 0.5, "1950s": 0.7},
    ),
    Persona(
        "horror buff",
        {"Horror": 1.0, "Thriller": 0.45, "Mystery": 0.4, "Sci-Fi": 0.25, "Fantasy": 0.2},
        share=0.1,
        decades={"1970s": 1.2, "1980s": 1.2},
    ),
    Persona(
        "family & animation",
        {
            "Animation": 1.0,
            "Children": 1.0,
            "Fantasy": 0.5,
            "Adventure": 0.45,
            "Comedy": 0.45,
            "Musical": 0.4,
            "Horror": 0.0,
            "Crime": 0.02,
            "Film-Noir": 0.0,
            "War": 0.02,
        },
        share=0.1,
    ),
    Persona(
        "classic cinema lover",
        {
            "Film-Noir": 1.0,
            "Drama": 0.5,
            "Romance": 0.5,
            "Western": 0.55,
            "Musical": 0.45,
            "Mystery": 0.45,
            "Comedy": 0.4,
            "War": 0.35,
        },
        share=0.08,
        decades={
            "1960s": 0.8,
            "1970s": 0.45,
            "1980s": 0.15,
            "1990s": 0.08,
            "2000s": 0.05,
            "2010s": 0.05,
            "2020s": 0.05,
        },
    ),
    Persona(
        "romance & drama",
        {"Romance": 1.0, "Drama": 0.65, "Musical": 0.35, "Comedy": 0.3},
        share=0.1,
        decades={"1930s": 0.6, "1940s": 0.6, "1950s": 0.6, "1960s": 0.6},
    ),
    Persona(
        "action blockbuster fan",
        {"Action": 1.0, "Adventure": 0.65, "Sci-Fi": 0.45, "Thriller": 0.45, "Fantasy": 0.3},
        share=0.12,
        decades=_OLD,
    ),
    Persona(
        "crime & thriller",
        {"Crime": 1.0, "Thriller": 0.8, "Mystery": 0.6, "Film-Noir": 0.5, "Drama": 0.3},
        share=0.1,
        decades={"1930s": 0.5, "1940s": 0.5, "1950s": 0.5, "1960s": 0.6},
    ),
    Persona(
        "comedy lover",
        {"Comedy": 1.0, "Romance": 0.3, "Adventure": 0.25, "Crime": 0.2, "Fantasy": 0.2},
        share=0.08,
        decades={"1930s": 0.5, "1940s": 0.5, "1950s": 0.5, "1960s": 0.6},
    ),
    Persona(
        "arthouse & world drama",
        {"Drama": 0.8, "Documentary": 0.5, "War": 0.35, "Romance": 0.3, "Mystery": 0.3},
        share=0.08,
        directors=WORLD_CINEMA_DIRECTORS,
    ),
    Persona(
        "mixed mainstream",
        {
            "Action": 0.5,
            "Adventure": 0.5,
            "Comedy": 0.5,
            "Drama": 0.5,
            "Sci-Fi": 0.45,
            "Thriller": 0.45,
            "Crime": 0.4,
            "Fantasy": 0.4,
            "Animation": 0.35,
            "Romance": 0.35,
        },
        share=0.12,
        decades=_OLD,
    ),
)
SHOWCASE_PERSONA = "sci-fi fan"

FRANCHISES: tuple[tuple[str, ...], ...] = (
    ("alien-1979", "aliens-1986", "alien-3-1992"),
    ("star-wars-1977", "the-empire-strikes-back-1980", "return-of-the-jedi-1983"),
    ("the-terminator-1984", "terminator-2-1991"),
    ("blade-runner-1982", "blade-runner-2049-2017"),
    ("the-matrix-1999", "the-matrix-reloaded-2003", "the-matrix-revolutions-2003"),
    (
        "back-to-the-future-1985",
        "back-to-the-future-part-ii-1989",
        "back-to-the-future-part-iii-1990",
    ),
    ("jurassic-park-1993", "the-lost-world-jurassic-park-1997"),
    ("dune-2021", "dune-part-two-2024"),
    ("mad-max-1979", "mad-max-2-1981", "mad-max-fury-road-2015"),
    ("frankenstein-1931", "bride-of-frankenstein-1935"),
    ("night-of-the-living-dead-1968", "dawn-of-the-dead-1978"),
    ("the-evil-dead-1981", "evil-dead-ii-1987", "army-of-darkness-1992"),
    ("scream-1996", "scream-2-1997"),
    ("the-conjuring-2013", "the-conjuring-2-2016"),
    ("a-quiet-place-2018", "a-quiet-place-part-ii-2020"),
    ("toy-story-1995", "toy-story-2-1999", "toy-story-3-2010", "toy-story-4-2019"),
    ("the-incredibles-2004", "incredibles-2-2018"),
    ("shrek-2001", "shrek-2-2004"),
    ("spider-man-into-the-spider-verse-2018", "spider-man-across-the-spider-verse-2023"),
    ("paddington-2014", "paddington-2-2017"),
    (
        "harry-potter-and-the-sorcerers-stone-2001",
        "harry-potter-and-the-chamber-of-secrets-2002",
        "harry-potter-and-the-prisoner-of-azkaban-2004",
    ),
    (
        "the-lord-of-the-rings-the-fellowship-of-the-ring-2001",
        "the-lord-of-the-rings-the-two-towers-2002",
        "the-lord-of-the-rings-the-return-of-the-king-2003",
    ),
    (
        "raiders-of-the-lost-ark-1981",
        "indiana-jones-and-the-temple-of-doom-1984",
        "indiana-jones-and-the-last-crusade-1989",
    ),
    ("dr-no-1962", "from-russia-with-love-1963", "goldfinger-1964"),
    ("casino-royale-2006", "skyfall-2012"),
    ("rocky-1976", "rocky-ii-1979"),
    ("top-gun-1986", "top-gun-maverick-2022"),
    ("die-hard-1988", "die-hard-2-1990", "die-hard-with-a-vengeance-1995"),
    ("mission-impossible-1996", "mission-impossible-fallout-2018"),
    ("the-bourne-identity-2002", "the-bourne-supremacy-2004", "the-bourne-ultimatum-2007"),
    ("batman-begins-2005", "the-dark-knight-2008", "the-dark-knight-rises-2012"),
    ("iron-man-2008", "the-avengers-2012", "avengers-infinity-war-2018", "avengers-endgame-2019"),
    ("john-wick-2014", "john-wick-chapter-2-2017"),
    ("the-godfather-1972", "the-godfather-part-ii-1974", "the-godfather-part-iii-1990"),
    ("kill-bill-vol-1-2003", "kill-bill-vol-2-2004"),
    (
        "a-fistful-of-dollars-1964",
        "for-a-few-dollars-more-1965",
        "the-good-the-bad-and-the-ugly-1966",
    ),
    ("three-colors-blue-1993", "three-colors-white-1994", "three-colors-red-1994"),
    ("before-sunrise-1995", "before-sunset-2004", "before-midnight-2013"),
)


def demo_items_path() -> Path:
    """The bundled catalog file (shipped as package data)."""
    return Path(__file__).resolve().parent / "demo" / "items.csv"


def decade_of(year: int) -> str:
    """The decade label of a year, e.g. "1980s"."""
    return f"{year // 10 * 10}s"


def load_demo_items(path: Path | None = None) -> list[Item]:
    """The catalog, in file order. Attributes: "genres", "year", "decade", "director";
    the text is the description. A DataError names the line of any malformed row."""
    path = path or demo_items_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(path, f"cannot read the demo catalog ({exc.strerror})") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    items: list[Item] = []
    seen: set[str] = set()
    line = 1
    try:
        header = next(reader, [])
        if [h.strip() for h in header] != list(ITEM_COLUMNS):
            raise DataError(path, f"the header must be {','.join(ITEM_COLUMNS)}", 1)
        line = reader.line_num + 1
        for fields in reader:
            items.append(_parse_item(path, fields, line, seen))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise DataError(path, f"malformed CSV: {exc}", line) from exc
    return items


def _split(cell: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in cell.split(VALUE_SEPARATOR) if v.strip())


def _parse_item(path: Path, fields: list[str], line: int, seen: set[str]) -> Item:
    if len(fields) != len(ITEM_COLUMNS):
        raise DataError(path, f"expected {len(ITEM_COLUMNS)} fields, found {len(fields)}", line)
    item_id, title, year, genres_cell, director_cell, description = (f.strip() for f in fields)
    if not item_id or not title:
        raise DataError(path, "empty id or title", line)
    if item_id in seen:
        raise DataError(path, f"id {item_id!r} appears twice", line)
    seen.add(item_id)
    if not (len(year) == 4 and year.isdigit()):
        raise DataError(path, f"year {year!r} is not a four-digit year", line)
    genres = _split(genres_cell)
    unknown = [g for g in genres if g not in GENRES]
    if not genres or unknown:
        raise DataError(
            path, f"genres {genres_cell!r}: each must be one of {', '.join(GENRES)}", line
        )
    attributes = {
        "genres": genres,
        "year": (year,),
        "decade": (decade_of(int(year)),),
        "director": _split(director_cell),
    }
    return Item(item_id, title, attributes, description)


def load_demo(n_users: int = DEFAULT_USERS, seed: int = DEFAULT_SEED) -> Dataset:
    """The demo dataset: the bundled catalog and `n_users` generated users.

    The same `seed` always gives the same users, ratings and timestamps. User ids are
    "u001", "u002", ... (wider with 1000 users or more); each user's "persona" attribute names
    the dominant taste. The first user (`DEMO_USER_ID`) is always a clear sci-fi fan.
    """
    if n_users < 1:
        raise ConfigError(f"the demo needs at least one user, not {n_users}")
    items = load_demo_items()
    users, rows = _generate(items, n_users, np.random.default_rng(seed))
    return Dataset.build(DATASET_NAME, items, rows, users, source=str(demo_items_path()))


def _genre_matrix(items: Sequence[Item]) -> np.ndarray:
    """(items, genres) booleans in `GENRES` order."""
    column = {g: j for j, g in enumerate(GENRES)}
    matrix = np.zeros((len(items), len(GENRES)), dtype=bool)
    for i, item in enumerate(items):
        for genre in item.attributes["genres"]:
            matrix[i, column[genre]] = True
    return matrix


def _persona_affinities(items: Sequence[Item], genre_matrix: np.ndarray) -> np.ndarray:
    """(personas, items) affinity of each persona for each item, >= 0."""
    n_genres = np.maximum(genre_matrix.sum(axis=1), 1)
    out = np.empty((len(PERSONAS), len(items)))
    for p, persona in enumerate(PERSONAS):
        weights = np.array([persona.genres.get(g, BASE_GENRE_WEIGHT) for g in GENRES])
        best = np.where(genre_matrix, weights, 0.0).max(axis=1)
        mean = (genre_matrix @ weights) / n_genres
        decade = np.array([persona.decades.get(it.attributes["decade"][0], 1.0) for it in items])
        director = np.array(
            [
                DIRECTOR_BOOST if persona.directors.intersection(it.attributes["director"]) else 1.0
                for it in items
            ]
        )
        out[p] = (BEST_GENRE_SHARE * best + (1 - BEST_GENRE_SHARE) * mean) * decade * director
    return out


@dataclass(frozen=True)
class _Franchises:
    """Each item's franchise (-1 for none) and position, and each franchise's parts in order."""

    franchise: np.ndarray
    part: np.ndarray
    parts: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, items: Sequence[Item]) -> _Franchises:
        index = {it.item_id: i for i, it in enumerate(items)}
        franchise = np.full(len(items), -1, dtype=np.int64)
        part = np.zeros(len(items), dtype=np.int64)
        parts: list[tuple[int, ...]] = []
        for f, ids in enumerate(FRANCHISES):
            members = tuple(index[i] for i in ids)
            franchise[list(members)] = f
            part[list(members)] = np.arange(len(members))
            parts.append(members)
        return cls(franchise, part, tuple(parts))


def _generate(
    items: Sequence[Item], n_users: int, rng: np.random.Generator
) -> tuple[list[User], list[tuple[str, str, float | None, int | None]]]:
    """Users (with their dominant persona) and their time-ordered interactions."""
    n_items = len(items)
    genre_matrix = _genre_matrix(items)
    by_persona = _persona_affinities(items, genre_matrix)
    franchises = _Franchises.of(items)
    popularity = rng.lognormal(0.0, POPULARITY_SIGMA, n_items)

    shares = np.array([p.share for p in PERSONAS])
    dominant = rng.choice(len(PERSONAS), size=n_users, p=shares / shares.sum())
    dominant_share = rng.uniform(*DOMINANT_SHARE, size=n_users)
    dominant[0] = [p.name for p in PERSONAS].index(SHOWCASE_PERSONA)
    dominant_share[0] = SHOWCASE_DOMINANT_SHARE
    mixture = rng.dirichlet(np.full(len(PERSONAS), SECONDARY_CONCENTRATION), size=n_users)
    mixture *= (1.0 - dominant_share)[:, None]
    mixture[np.arange(n_users), dominant] += dominant_share

    genre_noise = rng.normal(0.0, GENRE_NOISE_SIGMA, (n_users, len(GENRES)))
    item_noise = rng.normal(0.0, ITEM_NOISE_SIGMA, (n_users, n_items))
    per_item_genre_noise = genre_noise @ genre_matrix.T / genre_matrix.sum(axis=1)
    affinity = (mixture @ by_persona) * np.exp(per_item_genre_noise + item_noise)
    affinity = np.maximum(affinity, 1e-6)

    relative = affinity / affinity.max(axis=1, keepdims=True)
    latent = (
        1.0
        + 4.0 * relative**RATING_CURVE
        + rng.normal(0.0, USER_BIAS_SIGMA, (n_users, 1))
        + rng.normal(0.0, RATING_NOISE_SIGMA, (n_users, n_items))
    )
    ratings = np.clip(np.rint(latent), 1, 5)

    # Gumbel keys: sorting log-probability plus Gumbel noise draws an order without
    # replacement with probability proportional to affinity**sharpness * popularity.
    keys = TASTE_SHARPNESS * np.log(affinity) + np.log(popularity)
    preference_order = np.argsort(-(keys + rng.gumbel(size=keys.shape)), axis=1, kind="stable")
    lengths = np.rint(rng.lognormal(np.log(MEDIAN_HISTORY), 0.55, n_users)).astype(np.int64)
    lengths = np.clip(lengths, MIN_HISTORY, min(MAX_HISTORY, n_items))
    lengths[0] = min(SHOWCASE_HISTORY, n_items)
    starts = START_EPOCH + rng.integers(0, START_SPREAD_DAYS * DAY, size=n_users)

    width = max(3, len(str(n_users)))
    users: list[User] = []
    rows: list[tuple[str, str, float | None, int | None]] = []
    for u in range(n_users):
        user_id = f"u{u + 1:0{width}d}"
        users.append(User(user_id, {"persona": PERSONAS[dominant[u]].name}))
        sequence = _watch_sequence(
            preference_order[u], int(lengths[u]), ratings[u], franchises, rng
        )
        timestamp = int(starts[u])
        for n, (item, binge) in enumerate(sequence):
            if n:
                mean_gap = MEAN_BINGE_GAP_HOURS if binge else MEAN_GAP_HOURS
                timestamp += max(MIN_GAP_SECONDS, int(rng.exponential(mean_gap) * HOUR))
            rows.append((user_id, items[item].item_id, float(ratings[u, item]), timestamp))
    return users, rows


def _watch_sequence(
    preference_order: np.ndarray,
    length: int,
    ratings: np.ndarray,
    franchises: _Franchises,
    rng: np.random.Generator,
) -> list[tuple[int, bool]]:
    """(item, watched right after the previous part) in viewing order.

    Items come in `preference_order`, except that a franchise is usually started at its
    earliest unseen part and the next part often follows at once when the user liked the
    previous one.
    """
    watched: set[int] = set()
    sequence: list[tuple[int, bool]] = []
    follow_up = -1
    cursor = 0
    while len(sequence) < length:
        binge = follow_up >= 0
        if binge:
            item, follow_up = follow_up, -1
        else:
            item = int(preference_order[cursor])
            cursor += 1
            if item in watched:
                continue
            f = int(franchises.franchise[item])
            if f >= 0:
                earliest = next(i for i in franchises.parts[f] if i not in watched)
                if earliest != item and rng.random() < START_FRANCHISE_AT_FIRST_UNSEEN:
                    item = earliest
        watched.add(item)
        sequence.append((item, binge))
        f = int(franchises.franchise[item])
        if f >= 0:
            following = franchises.parts[f][int(franchises.part[item]) + 1 :]
            if following and following[0] not in watched:
                liked = ratings[item] >= 3
                chance = CONTINUE_AFTER_LIKED if liked else CONTINUE_AFTER_DISLIKED
                if rng.random() < chance:
                    follow_up = following[0]
    return sequence
