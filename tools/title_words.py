"""Word lists of the title linker (`tools.titles`), all in folded form (lower case, no accents,
no apostrophes: "don't" is "dont").

COMMON_WORDS are everyday English words: a title made only of them ("Heat", "Home Alone",
"Anything Else") is linked only with a sign that it is meant as a title (a capital letter, quotes,
a cue such as "seen" before it), and they are never read as typos of a title word.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _words(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can cannot could d did do does doing down during each few
    for from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not of off on once only or other
    our ours ourselves out over own same she should so some such than that the their theirs
    them themselves then there these they this those through to too under until up very was
    we were what when where which while who whom why will with would you your yours yourself
    yourselves us also like get got u ur s t ll re ve y o m im ive id ill youre youve youll
    dont doesnt didnt isnt wasnt arent werent cant couldnt wouldnt shouldnt wont havent hasnt
    hadnt thats whats theres lets hes shes theyre weve"""
)

COMMON_WORDS = STOPWORDS | _words(
    """able absolutely across act action actor actors actress actual actually add admit adult
    adults advance adventure adventures afraid afternoon age ago agree ahead air alive almost
    alone along already alright always amazing american among amount angry animal animals
    animated animation another answer anybody anyone anything anyway anywhere apart appreciate
    area arent army around art ask asked asking attention avoid aw awake award away awesome
    awful baby back bad badly bag ball band bank bar based basically battle beach bear beat
    beautiful beauty became become bed beer began begin beginning behind believe best better
    big bigger biggest bill bird birds birthday bit bite black blast blood blue board boat
    body book books bored boring born boss both bother bottom bought box boy boyfriend boys
    brain brand brave break breaking bring brings broke broken brother brothers brought build
    building bunch busy buy bye call called calling calm came camera cant car care career
    careful cars case cast cat catch caught cause center certain certainly chance change
    character characters chase cheap check child children choice choose chose christmas city
    class classic classics clean clear clever close club cold college come comedies comedy
    comes comic comics coming company complete completely cool cop cops could couple course
    cousin cover crazy create creepy crime cross crowd cry crying cute dad daddy damn dance
    danger dark date daughter day days dead deal dear death decent decide decided deep
    definitely delight depends deserve detective did die died different dinner directed
    director dirty disney doctor documentary documentaries does dog dogs doing done door
    double doubt drama dramas dream dreams drive drop drug drugs dude dumb during each early
    earth easy eat edge effects eh either else end ending ends enjoy enjoyed enjoying enough
    entertaining entire entirely episode episodes especially even evening event ever every
    everybody everyone everything evil exactly example excellent except excited exciting
    excuse expect experience eye eyes face fact fair fall family famous fan fans fantastic
    fantasy far fast father favorite favorites favourite fear feel feeling feelings fell felt
    female few fight fighting figure film films final finally find fine finish finished fire
    first fit five flick flicks fly follow food forever forget forgot forward found four free
    friday friend friendly friends front full fun funny future game games gave general
    genre genres gets getting girl girlfriend girls give given gives giving glad go god goes
    going gone good goodbye gore gory got gotta great greatest green group grow grown guess
    guy guys ha hah haha hahaha hair half hand hands hang happen happened happens happy hard
    hate hated hates head hear heard heart heavy hell hello help helped helpful helping here
    hero heroes hey hi high hilarious history hit hmm hold holiday home honest honestly hope
    hopefully horrible horror hot hour hours house huge human humor humour hurt husband idea
    ideas important inside instead interested interesting intense jealous job join joke
    jokes keep kept kid kidding kids kill killed killer killing kind kinda king kiss knew
    know known lady land large last late lately later laugh laughing laughs lead learn least
    leave left less let letter life light liked likes line lines list listen little live
    lives living lol long look looked looking looks lose lost lot lots loud love loved lovely
    loves low luck lucky mad made main make makes making male man many married matter maybe
    mean means meant meet memory men mention mentioned mess middle might mind mine minute
    minutes miss missed mom moment money monster monsters month months mood morning most
    mother mothers move moves movie movies much murder music must mystery name named near
    nearly need needed needs never new news next nice night nobody none nope normal nothing
    notice now number ok okay old older once one ones open original others otherwise outside
    own pain parent parents part party pass past people perfect perfectly perhaps person
    personal pick picked picture pictures piece place plan play played playing please plenty
    plot plus point police poor popular possible power pretty probably problem problems
    promise prove pull put question questions quick quiet quite rain rather read reading
    ready real reality realize really reason recent recently recommend recommendation
    recommendations recommended red relax relaxing remember remind reminds rest revenge review
    reviews ride right road rock role romance romantic room rule run running sad safe said
    save saw say saying says scare scared scares scary scene scenes school sci science score
    scream sea second see seeing seem seems seen sense series serious set seven several sex
    shall shame share short shot show shows sick side sign simple since single sister sit
    situation six sleep slow small smart smile so social someone something sometime sometimes
    somewhere son song songs soon sorry sort soul sound sounds space special speed spend
    spirit sport sports spot stand star stars start started state stay step still stop store
    stories story straight strange street strong stuck student stuff stupid style sub
    subject such suggest suggested suggestion suggestions summer sun super support suppose
    supposed sure surprise surprised suspense sweet take taken takes taking talk talking
    team tear tears tell ten terrible than thank thanks thanx thing things think thinking
    third though thought thoughts three thriller thrillers thrilling through throw thx time
    times tired title titles today together told tomorrow tonight took top total totally
    touch tough town trailer trailers travel tried trip trouble true trust truth try trying
    turn turned tv twice two type types typical ugh understand unless until usual usually
    version very video view village violence violent voice wait waiting wake walk walking
    wanna want wanted wants war warm watch watched watching water way ways weird welcome
    well went whatever while white whole wife wild win wish within without woman women
    wonder wonderful wondering word words work worked working works world worry worse worst
    worth wow write wrong yeah year years yes yet young younger yourself yup zombie zombies
    weekend weekends ghost ghosts heat trip rent stay performance performances conversation
    heist heists memories race switch epic twisted heaven queen infinity catch hype oscar
    oscars sequel sequels prequel prequels franchise remake remakes trilogy theater theaters
    theatre cinema netflix hulu plot twist twists psycho psychological superhero superheroes
    hero villain villains princess prince magic fairy tale tales dinosaur dinosaurs alien
    aliens robot robots vampire vampires witch witches creature monsters disaster drama
    classic cartoon cartoons teen teens teenage adult husband daughter son kid babies wedding
    honey sweetie buddy buddies lady ladies gentleman sir madam mister miss boss crew gang
    cops soldier soldiers army navy marine marines pilot agent spy spies killer killers
    thief thieves criminal detective lawyer judge doctor nurse teacher student students
    school college university office hospital prison jail island beach ocean forest desert
    mountain jungle space planet moon sun star stars sky world earth nature animals animal
    cat dog horse bird fish shark sharks lion tiger bear wolf snake spider dragon dragons
    chance choices decision freedom justice mystery secret secrets legend legends myth
    story stories tale truth lie lies dream dreams nightmare nightmares fear fears blood
    gore guts death dying alive survivor survivors survival escape rescue mission missions
    battle battles fight fights war peace victory revenge justice crime crimes murder
    murders heist money gold treasure diamond diamonds power powers hope faith glory honor
    christmas halloween thanksgiving easter summer winter spring fall autumn holiday holidays
    birthday anniversary valentine valentines date dates night nights morning evening
    afternoon today tonight tomorrow yesterday week weeks month months year years decade
    recently lately ago currently soon finally actually basically seriously literally
    absolutely sure definitely exactly"""
)

CUES = _words(
    """like liked likes love loved loves enjoy enjoyed enjoys adore adored seen saw see watch
    watched rewatch rewatched recommend recommended suggest suggested try tried called named
    titled prefer preferred hate hated dislike disliked including"""
)
"""A word just before a title that marks it as meant ("seen Heat", "loved Up")."""

CUE_PAIRS = frozenset(
    {("how", "about"), ("what", "about"), ("similar", "to"), ("such", "as"), ("fan", "of"),
     ("check", "out"), ("the", "movie"), ("the", "film"), ("sequel", "to")}
)  # fmt: skip
"""Two words just before a title that mark it as meant ("how about Heat")."""

LATEST_CUES = _words("new newer newest latest recent remake reboot")
EARLIEST_CUES = _words("original old older classic")
"""Words just before a title with several versions that pick the latest or the earliest."""

LIKE_CUES = (
    ("something", "like"),
    ("movies", "like"),
    ("movie", "like"),
    ("films", "like"),
    ("film", "like"),
    ("similar", "to"),
    ("such", "as"),
    ("called",),
    ("named",),
    ("titled",),
)
"""Cues after which even lower-case words that are no catalog title are reported unknown."""

UNKNOWN_CUES = _words("like liked love loved enjoyed seen saw watched about called named titled")
"""Cues after which a capitalised phrase that is no catalog title is reported unknown."""

NOT_TITLE_AFTER = _words("movies films film movie flicks series franchise s")
"""A capitalised phrase followed by these ("Tom Hanks movies") is a person or a series."""

BOUNDARIES = _words(
    """but or and with because which that who for since so though although if when while
    i it is was are were has have had to in on at by from maybe please then"""
)
"""Words that end a lower-case phrase after a `LIKE_CUES` cue."""

ORDINALS: dict[str, int] = {
    "first": 0,
    "original": 0,
    "second": 1,
    "third": 2,
    "fourth": 3,
    "fifth": 4,
    "last": -1,
    "latest": -1,
    "newest": -1,
}
"""The place in a series that "the first one", "the last one" ... refer to."""

SPELLINGS: dict[str, str] = {"volume": "vol", "pt": "part", "versus": "vs"}
"""Other spellings of title words, read as the catalogs write them."""

_SPELLED = "one two three four five six seven eight nine ten eleven twelve"
_ROMAN = "ii iii iv v vi vii viii ix x xi xii"
NUMBERS: dict[str, str] = {
    **{w: str(n) for n, w in enumerate(_SPELLED.split(), start=1)},
    **{w: str(n) for n, w in enumerate(_ROMAN.split(), start=2)},
}
"""Number words and Roman numerals read as digits, in titles and messages alike ("Rocky II" is
"rocky two" is "rocky 2")."""
