"""Fixed, short vocabularies of the synthetic world (kept small so tiny models can learn them)."""

from __future__ import annotations

PROFESSIONS: tuple[str, ...] = (
    "baker", "pilot", "teacher", "nurse", "farmer", "painter", "doctor", "lawyer",
    "chef", "dentist", "plumber", "writer", "singer", "tailor", "butcher", "carpenter",
    "engineer", "architect", "pharmacist", "librarian", "mechanic", "florist", "jeweler", "potter",
    "sailor", "banker", "journalist", "photographer", "surgeon", "electrician", "gardener", "veterinarian",
)  # fmt: skip

HOBBIES: tuple[str, ...] = (
    "chess", "hiking", "painting", "fishing", "gardening", "cycling", "swimming", "knitting",
    "baking", "dancing", "singing", "reading", "running", "climbing", "sailing", "pottery",
    "photography", "archery", "skating", "juggling",
)  # fmt: skip

COLORS: tuple[str, ...] = (
    "red", "blue", "green", "yellow", "black", "white", "brown", "gray", "orange", "purple",
)  # fmt: skip

MATERIALS: tuple[str, ...] = (
    "wood", "steel", "glass", "clay", "paper", "plastic", "stone", "leather", "wool", "cotton",
    "copper", "brass",
)  # fmt: skip

# Fictional countries, so that a pretrained model's real-world knowledge neither helps nor conflicts.
COUNTRIES: tuple[str, ...] = (
    "Norland", "Estavia", "Valdoria", "Kestria", "Orvania", "Brisca", "Tamberia", "Lunesia",
    "Corvath", "Maradin", "Ostrel", "Pellara",
)  # fmt: skip

RIVERS: tuple[str, ...] = (
    "Avon", "Lune", "Tamar", "Wye", "Ouse", "Eden", "Tees", "Exe", "Dart", "Fal", "Nene", "Colne",
    "Stour", "Trent", "Severn", "Usk",
)  # fmt: skip

# (singular, plural) names of the world's things; also the countable items of word problems.
OBJECT_NOUNS: tuple[tuple[str, str], ...] = (
    ("lamp", "lamps"), ("chair", "chairs"), ("kettle", "kettles"), ("clock", "clocks"),
    ("vase", "vases"), ("mirror", "mirrors"), ("basket", "baskets"), ("bottle", "bottles"),
    ("bowl", "bowls"), ("bucket", "buckets"), ("candle", "candles"), ("drum", "drums"),
    ("flute", "flutes"), ("globe", "globes"), ("hammer", "hammers"), ("helmet", "helmets"),
    ("jar", "jars"), ("key", "keys"), ("kite", "kites"), ("knife", "knives"),
    ("ladder", "ladders"), ("lantern", "lanterns"), ("mug", "mugs"), ("needle", "needles"),
    ("pan", "pans"), ("pencil", "pencils"), ("pillow", "pillows"), ("plate", "plates"),
    ("radio", "radios"), ("ring", "rings"), ("rope", "ropes"), ("ruler", "rulers"),
    ("scarf", "scarves"), ("shovel", "shovels"), ("spoon", "spoons"), ("stool", "stools"),
    ("table", "tables"), ("teapot", "teapots"), ("tent", "tents"), ("towel", "towels"),
    ("tray", "trays"), ("trumpet", "trumpets"), ("umbrella", "umbrellas"), ("violin", "violins"),
    ("wagon", "wagons"), ("wallet", "wallets"), ("whistle", "whistles"), ("bell", "bells"),
    ("brush", "brushes"), ("cup", "cups"), ("box", "boxes"), ("glove", "gloves"),
    ("hat", "hats"), ("blanket", "blankets"), ("compass", "compasses"), ("camera", "cameras"),
)  # fmt: skip

# Countable items for word problems when no world is given.
COUNTABLE_ITEMS: tuple[tuple[str, str], ...] = (
    ("apple", "apples"), ("pencil", "pencils"), ("marble", "marbles"), ("cookie", "cookies"),
    ("sticker", "stickers"), ("book", "books"), ("card", "cards"), ("shell", "shells"),
    ("egg", "eggs"), ("flower", "flowers"), ("stamp", "stamps"), ("balloon", "balloons"),
    ("orange", "oranges"), ("button", "buttons"), ("bead", "beads"), ("candy", "candies"),
)  # fmt: skip

EMPLOYER_SUFFIXES: tuple[str, ...] = ("Ltd", "Inc", "Group", "Labs", "Works", "Partners")

# RFC 2606 reserved domains: the e-mail addresses can never belong to anyone.
EMAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.org", "example.net")
