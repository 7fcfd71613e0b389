"""The passport and visa photo formats we make: one table, each row citing its official source.

Sizes are the printed photo; pixels are at PRINT_DPI. Head height is measured from the
bottom of the chin to the top of the head (the crown, hair included where the authority
says so), as each source defines it. A row changes only when its source changes: check the
source page, update the numbers and the source together.
"""

from __future__ import annotations

from dataclasses import dataclass

PRINT_DPI = 300
MM_PER_INCH = 25.4


def _px(mm: float, dpi: int = PRINT_DPI) -> int:
    return round(mm / MM_PER_INCH * dpi)


@dataclass(frozen=True)
class DocumentSpec:
    key: str
    label: str
    country: str  # ISO 3166-1 alpha-2; "EU" for the Schengen area
    width_mm: float
    height_mm: float
    head_min_mm: float  # chin to crown
    head_max_mm: float
    background: str
    source: str  # who publishes the requirement, the page's name and its address
    # For online applications: the exact pixel size wanted and the largest file accepted.
    digital_px: tuple[int, int] | None = None
    digital_max_bytes: int | None = None

    @property
    def print_px(self) -> tuple[int, int]:
        """The photo's size in pixels at PRINT_DPI."""
        return _px(self.width_mm), _px(self.height_mm)

    @property
    def digital_size(self) -> tuple[int, int]:
        """The size of the digital file: the online service's size, else the print size."""
        return self.digital_px or self.print_px

    @property
    def digital_dpi(self) -> float:
        """The density that makes the digital file's physical size the document's size."""
        return self.digital_size[0] / (self.width_mm / MM_PER_INCH)

    @property
    def head_range(self) -> tuple[float, float]:
        """Head height as fractions of the photo height (min, max)."""
        return self.head_min_mm / self.height_mm, self.head_max_mm / self.height_mm

    @property
    def head_target(self) -> float:
        """Where we aim: the middle of the allowed range, as a fraction of the height."""
        low, high = self.head_range
        return (low + high) / 2


INCH = MM_PER_INCH

DOCUMENT_SPECS: dict[str, DocumentSpec] = {
    spec.key: spec
    for spec in (
        DocumentSpec(
            key="us_passport",
            label="United States passport (2 x 2 in)",
            country="US",
            width_mm=2 * INCH,
            height_mm=2 * INCH,
            head_min_mm=1 * INCH,  # 1 to 1 3/8 in: 50% to 69% of the height
            head_max_mm=1.375 * INCH,
            background="plain white or off-white",
            source=(
                "U.S. Department of State, Bureau of Consular Affairs: Passport photo "
                "requirements and digital image requirements of the Photo Tool, "
                "https://travel.state.gov/content/travel/en/passports/how-apply/photos.html"
            ),
            digital_px=(600, 600),
            digital_max_bytes=240_000,  # "240 kB or less": read as 1000-byte kB, the stricter
        ),
        DocumentSpec(
            key="schengen_visa",
            label="Schengen visa / ICAO standard (35 x 45 mm)",
            country="EU",
            width_mm=35,
            height_mm=45,
            head_min_mm=32,  # 70% to 80% of the height, as ICAO Doc 9303 asks
            head_max_mm=36,
            background="plain light grey or light blue, no shadows",
            source=(
                "ICAO Doc 9303, Machine Readable Travel Documents, Part 3 and its portrait "
                "quality guidance (https://www.icao.int/publications/pages/publication.aspx"
                "?docnum=9303), as applied by the Schengen states' visa photo templates"
            ),
        ),
        DocumentSpec(
            key="uk_passport",
            label="United Kingdom passport (35 x 45 mm)",
            country="GB",
            width_mm=35,
            height_mm=45,
            head_min_mm=29,
            head_max_mm=34,
            background="plain cream or light grey",
            source=(
                "HM Passport Office, GOV.UK: Photos for passports, "
                "https://www.gov.uk/photos-for-passports"
            ),
            # The online service takes digital photos of at least 600 x 750 px; this keeps
            # the printed photo's 35:45 proportions at that width.
            digital_px=(600, 771),
        ),
        DocumentSpec(
            key="canada_passport",
            label="Canada passport (50 x 70 mm)",
            country="CA",
            width_mm=50,
            height_mm=70,
            head_min_mm=31,
            head_max_mm=36,
            background="plain white or light-coloured",
            source=(
                "Immigration, Refugees and Citizenship Canada: Passport photo "
                "specifications, https://www.canada.ca/en/immigration-refugees-citizenship/"
                "services/canadian-passports/photos.html"
            ),
        ),
        DocumentSpec(
            key="china_passport",
            label="China passport (33 x 48 mm)",
            country="CN",
            width_mm=33,
            height_mm=48,
            head_min_mm=28,
            head_max_mm=33,
            background="plain white",
            source=(
                "Ministry of Foreign Affairs of the People's Republic of China, Consular "
                "Service: photo requirements for passport and travel document applications, "
                "https://cs.mfa.gov.cn/"
            ),
        ),
        DocumentSpec(
            key="india_passport",
            label="India passport, applied for abroad (2 x 2 in)",
            country="IN",
            width_mm=2 * INCH,
            height_mm=2 * INCH,
            head_min_mm=25,  # top of hair to bottom of chin, 25 to 35 mm
            head_max_mm=35,
            background="plain white or off-white",
            source=(
                "Ministry of External Affairs, Passport Seva: Photo specifications for "
                "passport applications at Indian missions abroad, "
                "https://passport.gov.in/oci/Photo-Spec-FINAL.pdf"
            ),
        ),
    )
}


def spec_get(key: str) -> DocumentSpec:
    """The spec for *key*; ValueError naming the known keys otherwise."""
    try:
        return DOCUMENT_SPECS[key]
    except KeyError:
        known = ", ".join(sorted(DOCUMENT_SPECS))
        raise ValueError(f"unknown document {key!r}; known: {known}") from None
