"""Word lists for the offline intent parser (`agents.intent`).

Every phrase here is written in the parser's folded form: lower case, accents removed,
apostrophes dropped ("don't" -> "dont", "I'd" -> "id"), other punctuation read as spaces.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# fmt: off
# Genre concepts. Each concept names the catalog value keys it may appear as (a value's key
# is its folded name with "'s" and every non-alphanumeric character removed: "Sci-Fi" ->
# "scifi", "Children's" -> "children") and the phrases that ask for it.
CONCEPT_KEYS: dict[str, tuple[str, ...]] = {
    "action": ("action",),
    "adventure": ("adventure",),
    "animation": ("animation", "animated", "anime"),
    "children": ("children", "family", "kids", "childrens"),
    "comedy": ("comedy",),
    "crime": ("crime",),
    "documentary": ("documentary", "documentaries"),
    "drama": ("drama",),
    "fantasy": ("fantasy",),
    "filmnoir": ("filmnoir", "noir"),
    "horror": ("horror",),
    "musical": ("musical", "music"),
    "mystery": ("mystery",),
    "romance": ("romance",),
    "scifi": ("scifi", "sciencefiction"),
    "thriller": ("thriller",),
    "war": ("war",),
    "western": ("western",),
}

SYNONYMS: dict[str, tuple[str, ...]] = {
    "action": (
        "action", "action packed", "explosions", "explosive", "fight scenes", "fights",
        "martial arts", "kung fu", "karate", "car chase", "car chases", "shootout",
        "shootouts", "adrenaline", "stunts", "superhero", "superheroes", "super hero",
        "super heroes", "gunfights", "high octane",
    ),
    "adventure": (
        "adventure", "adventures", "adventurous", "epic", "epics", "quest", "quests",
        "expedition", "treasure", "treasure hunt", "swashbuckling", "swashbuckler", "pirate",
        "pirates", "exploration", "journey",
    ),
    "animation": (
        "animation", "animated", "cartoon", "cartoons", "anime", "pixar", "stop motion",
        "claymation", "animations",
    ),
    "children": (
        "kids", "kid", "children", "child", "family", "family friendly", "kid friendly",
        "child friendly", "for the whole family", "whole family", "little ones", "toddler",
        "toddlers", "all ages", "childrens",
    ),
    "comedy": (
        "comedy", "comedies", "comedic", "funny", "funnier", "funniest", "hilarious",
        "humor", "humour", "humorous", "laugh", "laughs", "laughing", "silly", "goofy",
        "witty", "lighthearted", "light hearted", "amusing", "jokes", "spoof", "parody",
        "slapstick", "satire", "satirical", "feel good", "feelgood", "rom com", "romcom",
        "romcoms", "rom coms", "dark comedy", "black comedy",
    ),
    "crime": (
        "crime", "crimes", "criminal", "criminals", "heist", "heists", "gangster",
        "gangsters", "gang", "gangs", "mob", "mobster", "mobsters", "mafia", "cartel",
        "robbery", "robberies", "bank robbery", "hitman", "hit man", "con artist",
        "con artists", "organized crime", "organised crime", "cops", "police",
    ),
    "documentary": (
        "documentary", "documentaries", "docs", "docu", "nonfiction", "non fiction",
        "real life footage",
    ),
    "drama": (
        "drama", "dramas", "dramatic", "serious", "emotional", "tearjerker", "tear jerker",
        "sad", "heartbreaking", "touching", "character study", "moving story", "make me cry",
    ),
    "fantasy": (
        "fantasy", "fantasies", "magic", "magical", "wizard", "wizards", "witch", "witches",
        "dragon", "dragons", "sorcery", "sorcerer", "elves", "elf", "fairy tale",
        "fairy tales", "fairytale", "fairytales", "fairies", "mythical", "mythology",
        "enchanted", "sword and sorcery", "unicorns",
    ),
    "filmnoir": ("noir", "film noir", "noirs", "femme fatale", "hardboiled", "neo noir"),
    "horror": (
        "horror", "horrors", "scary", "scarier", "scariest", "scare", "scares", "spooky",
        "creepy", "frightening", "terrifying", "terror", "haunted", "haunted house",
        "ghost story", "ghost stories", "ghosts", "zombie", "zombies", "vampire", "vampires",
        "werewolf", "werewolves", "slasher", "slashers", "gore", "gory", "demons", "demonic",
        "possession", "exorcism", "jump scares", "freaky", "eerie", "bloodcurdling",
        "spine chilling", "chilling",
    ),
    "musical": (
        "musical", "musicals", "music", "singing", "songs", "song and dance", "dancing",
        "broadway", "sing along", "singalong",
    ),
    "mystery": (
        "mystery", "mysteries", "mysterious", "detective", "detectives", "whodunit",
        "whodunits", "whodunnit", "who done it", "sleuth", "murder mystery", "puzzle",
        "private eye", "investigation", "clues",
    ),
    "romance": (
        "romance", "romances", "romantic", "love story", "love stories", "rom com", "romcom",
        "romcoms", "rom coms", "date night", "falling in love", "chick flick", "love affair",
    ),
    "scifi": (
        "sci fi", "scifi", "science fiction", "space", "outer space", "spaceship",
        "spaceships", "space ship", "spacecraft", "alien", "aliens", "extraterrestrial",
        "extraterrestrials", "futuristic", "future", "dystopia", "dystopian", "cyberpunk",
        "robot", "robots", "android", "androids", "cyborg", "cyborgs", "time travel",
        "time machine", "galaxy", "galactic", "planets", "artificial intelligence", "sf",
    ),
    "thriller": (
        "thriller", "thrillers", "suspense", "suspenseful", "thrilling", "tense",
        "edge of my seat", "edge of your seat", "nail biter", "nail biting", "gripping",
        "psychological thriller", "cat and mouse", "conspiracy",
    ),
    "war": (
        "war", "soldier", "soldiers", "military", "battlefield", "battlefields", "combat",
        "world war", "wwii", "ww2", "wwi", "ww1", "army", "troops",
    ),
    "western": (
        "western", "westerns", "cowboy", "cowboys", "wild west", "old west", "gunslinger",
        "gunslingers", "frontier", "spaghetti western", "outlaws",
    ),
}

# Phrases standing for several concepts at once ("not too violent").
MULTI_CONCEPT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "violent": ("action", "crime", "horror", "war"),
    "violence": ("action", "crime", "horror", "war"),
    "brutal": ("action", "crime", "horror", "war"),
    "bloody": ("action", "horror", "war"),
    "disney": ("animation", "children"),
}

# Generic senses that are only meant in lower case ("aliens" the creatures, not "Aliens").
LOWERCASE_ONLY = frozenset({"alien", "aliens", "future", "space"})

NEGATORS: tuple[str, ...] = (
    "no", "not", "nothing", "none", "without", "dont", "do not", "doesnt", "does not",
    "dont want", "do not want", "dont like", "do not like", "didnt like", "did not like",
    "dont need", "dont show", "dont show me", "dont give me", "dont recommend", "hate",
    "hated", "hates", "dislike", "dislikes", "disliked", "avoid", "avoiding", "except",
    "excluding", "exclude", "but not", "no more", "not into", "not a fan of", "other than",
    "apart from", "anything but", "rather not", "cant stand", "can not stand",
    "cannot stand", "sick of", "tired of", "instead of", "rather than", "less", "fewer",
    "skip", "nor", "neither", "minus", "not in the mood for", "stay away from",
    "keep away from", "spare me", "free of", "wont", "isnt", "arent",
)

# Phrases that carry no preference but contain negators or cue words.
NEUTRAL_PHRASES: tuple[str, ...] = (
    "not sure", "no idea", "no preference", "no preferences", "doesnt matter",
    "does not matter", "dont care", "do not care", "dont mind", "do not mind",
    "nothing in particular", "no particular", "not picky", "no problem", "no worries",
    "up for anything", "open to anything", "anything goes", "whatever", "why not",
    "would like", "id like", "wed like", "i would like", "feel like", "feeling like",
    "in the mood for", "not bad", "no matter", "dont know", "do not know", "not only",
)

# Words that end a negation's scope once it has caught something ("no horror, I want ...").
RESETS = frozenset(
    {
        "something", "some", "maybe", "perhaps", "instead", "rather", "prefer",
        "preferably", "ideally", "just", "only", "want", "need", "like", "love", "enjoy",
        "please", "give", "show", "recommend", "looking", "ok", "okay", "fine", "great",
        "good", "also", "plus",
    }
)
BOUNDARY_WORDS = frozenset({"but", "however", "though", "although", "yet", "whereas"})
LIST_WORDS = frozenset({"or", "and", "nor", "no", "any", "too", "also", "either", "neither"})
# Words a negation may skip before governing a year expression ("nothing too old").
NEGATION_TRANSPARENT = frozenset(
    {
        "too", "so", "very", "that", "really", "the", "a", "an", "movies", "movie", "films",
        "film", "anything", "stuff", "overly", "super", "any", "much", "big", "fan", "of",
        "into", "particularly", "all", "kind", "sort", "type", "types", "kinds", "one",
        "ones", "something",
    }
)

# Reference cues: phrases after which a title is an example of what the user wants.
STRONG_CUES: tuple[str, ...] = (
    "like", "similar to", "similar", "such as", "in the style of", "style of", "liked",
    "loved", "enjoyed", "adored", "reminds me of", "reminded me of", "reminiscent of",
    "reminds", "as good as", "along the lines of", "in the vein of", "vein of",
    "comparable to", "akin to", "resembling", "fan of", "fans of", "more like",
    "the likes of", "same vibe as", "in the spirit of", "inspired by", "just watched",
    "watched", "rewatched", "favorite", "favourite", "favorite movie is",
    "favourite movie is", "favorite film is", "favourite film is", "same as", "if you liked",
    "just finished", "finished", "just saw", "how about", "what about",
)
WEAK_CUES: tuple[str, ...] = ("love", "enjoy", "adore")
NEGATIVE_CUES: tuple[str, ...] = (
    "dont like", "do not like", "didnt like", "did not like", "hated", "hate", "disliked",
    "dislike", "not like", "nothing like", "unlike", "cant stand", "cannot stand",
    "couldnt stand", "not a fan of", "wasnt a fan of", "anything but", "except",
    "other than", "not", "apart from", "instead of", "less like", "not like", "except for",
)
# After these, "like" means "want" ("I'd like a comedy") and is no cue.
LIKE_AS_WANT = frozenset(
    {"would", "id", "wd", "youd", "wed", "theyd", "feel", "feels", "felt", "feeling", "looks",
     "look", "sounds", "seems", "seem", "looked", "sounded"}
)
LIKE_SUBJECTS = frozenset(
    {"i", "we", "you", "they", "he", "she", "really", "also", "do", "still", "usually",
     "generally", "both", "always", "totally", "mostly", "kinda", "normally", "typically"}
)
# Words after a title that make it a reference ("a Toy Story fan", "Alien vibes").
POST_CUES = frozenset(
    {"fan", "fans", "lover", "lovers", "vibes", "vibe", "esque", "ish", "type", "style"}
)
CUE_FILLERS = frozenset(
    {"the", "a", "an", "movie", "movies", "film", "films", "original", "first", "one",
     "ones", "that", "this", "those", "these", "say", "eg", "maybe", "probably", "watching",
     "seeing", "series", "franchise", "trilogy", "old", "classic", "good", "great", "whole",
     "entire", "to", "of", "about", "really", "very", "much"}
)
TITLE_SEPARATORS = frozenset({"and", "or", "plus", "also", "maybe", "or maybe", "then", "with"})
WHOLE_MESSAGE_FILLERS = frozenset(
    {"the", "a", "an", "movie", "film", "flick", "please", "pls", "plz", "thanks", "thx"}
)

# Years.
DECADE_WORDS: dict[str, int] = {
    "twenties": 20, "thirties": 30, "forties": 40, "fifties": 50, "sixties": 60,
    "seventies": 70, "eighties": 80, "nineties": 90, "noughties": 0, "aughts": 0,
}
RECENT_WORDS = frozenset(
    {"recent", "recently", "new", "newer", "newest", "latest", "modern", "contemporary",
     "current", "nowadays", "brand new"}
)
OLD_WORDS = frozenset(
    {"old", "older", "oldie", "oldies", "classic", "classics", "vintage", "retro",
     "golden age", "black and white", "old school", "old fashioned"}
)
BEFORE_WORDS = frozenset(
    {"before", "pre", "prior to", "earlier than", "older than", "until before"}
)
AFTER_WORDS = frozenset({"after", "post", "later than", "newer than"})
SINCE_WORDS = frozenset({"since", "starting", "starting from", "as of", "from at least"})
UNTIL_WORDS = frozenset({"until", "till", "up to", "through", "by", "no later than", "upto"})
OPEN_LATER = frozenset(
    {"or later", "or newer", "and later", "and newer", "onwards", "onward", "on", "and up",
     "or after", "plus", "or more recent", "and after"}
)
OPEN_EARLIER = frozenset(
    {"or earlier", "or older", "and earlier", "and older", "or before", "and before"}
)
RANGE_JOINERS = frozenset({"to", "and", "through", "until", "till", "thru"})
SPAN_PREFIXES = frozenset({"from", "in", "during", "of", "the", "made in", "released in"})
DECADE_PARTS: dict[str, tuple[int, int]] = {
    "early": (0, 3), "mid": (3, 6), "middle": (3, 6), "late": (6, 9),
}

# Counts.
NUMBER_WORDS: dict[str, int] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "a couple": 2, "a couple of": 2, "couple of": 2, "a pair of": 2, "a few": 3,
    "few": 3, "a handful": 5, "a handful of": 5, "handful of": 5, "several": 5,
    "a dozen": 12, "dozen": 12, "half a dozen": 6, "a single": 1, "single": 1,
}
COUNT_NOUNS = frozenset(
    {"movies", "movie", "films", "film", "picks", "pick", "recommendations",
     "recommendation", "suggestions", "suggestion", "titles", "title", "options", "option",
     "ones", "one", "things", "shows", "items", "choices", "flicks", "flick", "pictures",
     "more", "results", "ideas", "classics", "gems", "hits"}
)
COUNT_LEADS = frozenset(
    {"top", "give me", "show me", "list", "suggest", "recommend", "name", "find me", "get me",
     "best", "want", "need", "only", "just", "me"}
)
COUNT_BLOCKERS = frozenset(
    {"year", "years", "decade", "decades", "minute", "minutes", "min", "mins", "hour",
     "hours", "hrs", "day", "days", "week", "weeks", "month", "months", "times", "star",
     "stars", "rating", "rated", "percent", "people", "friends", "kids", "children", "of us",
     "persons", "adults", "seasons", "season", "episodes", "episode", "points", "out",
     "am", "pm", "oclock", "dollars", "bucks"}
)

# Values of other attributes that are too generic to mean a request on their own.
VALUE_BLOCKLIST = frozenset(
    {"unknown", "none", "other", "n a", "na", "no genres listed", "misc", "various", "tv",
     "movie", "film", "imax"}
)

STOPWORDS = _words(
    """a about above after again against all am an and any are arent as at be because been
    before being below between both but by can cant cannot could couldnt d did didnt do does
    doesnt doing dont down during each few for from further had hadnt has hasnt have havent
    having he hed hell hes her here heres hers herself him himself his how hows i id ill im
    ive if in into is isnt it its itself lets me more most mustnt my myself no nor not of off
    on once only or other ought our ours ourselves out over own same shant she shed shell
    shes should shouldnt so some such than that thats the their theirs them themselves then
    there theres these they theyd theyll theyre theyve this those through to too under until
    up very was wasnt we wed well were weve werent what whats when whens where wheres which
    while who whos whom why whys with wont would wouldnt you youd youll youre youve your
    yours yourself yourselves us also just like get got u ur s t ll re ve y o m"""
)

# Request words: never keywords.
GENERIC_WORDS = _words(
    """movie movies film films flick flicks picture pictures cinema watch watching watched
    watchable see seeing seen saw recommend recommends recommended recommendation
    recommendations suggest suggests suggestion suggestions something anything everything
    nothing please pls plz thanks thank thx want wanted wanna need needs looking look find
    show shows give gimme tell tonight today evening weekend night good great best nice
    cool awesome fun mood feel feeling kind sort type types maybe perhaps really very pretty
    quite somewhat some any one ones stuff thing things hi hello hey yo ok okay hmm um uh
    idea ideas option options pick picks choice choices top list more other else similar
    liked love loved lovely enjoy enjoyed adore adored prefer preferably ideally fan fans
    vibe vibes style reminds reminded reminiscent lines vein spirit likes comparable
    akin resembling inspired favorite favourite rather instead lol haha help can could
    would should might must will shall let lets go going wondering wonder know think
    suggesting recommending kinda sorta bit little lot lots much many same different
    particular particularly especially whatever whichever time times actually definitely
    probably possibly typically usually generally also yes yeah yep nope sure fine well
    ready rewatch rewatched titles title results result items item couple few several
    dozen handful single esque ish starring set finished"""
)

# Common English words: titles made only of these are easily false positives ("Heat",
# "Home Alone"), and person-name parts made of them need a capital letter ("Box", "Wise").
COMMON_WORDS = _words(
    """alien aliens alone american angry apartment arrival baby back bad bay beautiful
    beauty big bird birds black blade blood blue boat boiled book born box boy boys brave
    break bride bridge brief broken brother brothers call car cast cat cats chain city
    clock club cold come contact cool cop country crash crazy cross dance dancer dark dawn
    day days dead deal death deep departed die dirty dog dogs door down dream dreams drive
    dune earth edge eight end escape eye eyes face fall family far fear fever fight fire
    first fish five fly forest fort four free friday friends frozen full game games get
    ghost gift girl girls give go god gold gone good grand great green grey ground gun guns
    hand hard head heart heat heaven hell her high hill hit hold holy home hope horse hot
    hour house hunt hunter ice inside island it jack jaws jones kid kids kill king kiss
    knight lady land last late lee legend life light lines little live lives lord lost love
    lucky mad magic man marsh may men midnight mind miss mission moon more mother mountain
    music must naked never new next night nine no nope north now ocean old one only open
    others out paper paradise paris park party past people perfect persona pianist place
    play point poor power prisoners psycho queen quiet rain raid ready red reed ring rise
    river road rock rocky room run rush sand scream sea secret seven seventh shadow shining
    shot silence silent single sky sleep small snow soldier solo some song soul sound south
    space speed spring star stars stone storm story strange street strong summer sun super
    sweet taxi ten thing things three time times top touch town toy train tree true truth
    twelve two under up us vertigo wall war water way west white wild wind wise wolf woman
    women wood world year years young"""
)
NAME_PARTICLES = frozenset({"de", "del", "della", "van", "von", "da", "di", "le", "la", "du",
                            "der", "den", "dos", "das", "ter", "al", "el", "bin", "mac"})
LEADING_ARTICLES = frozenset({"the", "a", "an"})
TRAILING_ARTICLES = frozenset(
    {"the", "a", "an", "il", "le", "la", "les", "l", "el", "los", "las", "der", "die", "das",
     "den", "det", "lo", "gli", "i"}
)
ROMAN_NUMERALS: dict[str, str] = {
    "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7", "viii": "8",
}
# fmt: on
