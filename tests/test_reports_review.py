"""The review page (flare_ml.reports.review): spans, context, escaping; hand-made findings."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from flare_ml.reports.findings import Evidence, ReportFindings
from flare_ml.reports.review import FIELD_COLOURS, review_frame, review_page

TEXT = (
    "FINDINGS: No new lytic lesion. Possible new focus of uptake in the left 6th rib. "
    "Increased sclerosis of the known L2 lesion. <script>alert(1)</script> & more.\n"
    "IMPRESSION: PR liver."
)


def _ev(field, value, span, **context):
    start = TEXT.index(span)
    return Evidence(field, value, start, start + len(span), span, span, "findings", **context)


@pytest.fixture(scope="module")
def page() -> str:
    found = ReportFindings(
        1, "unknown", False, True, False, "PR", False, True,
        (
            _ev("new_lesion_morphology", "lytic", "new lytic lesion", negated=True),
            _ev("new_bone_lesions", 1, "new focus of uptake", uncertain=True),
            _ev("known_lesion_sclerosis", True, "sclerosis of the known L2 lesion",
                historical=True),
            _ev("extraosseous_response", "PR", "PR liver"),
            Evidence("progressive_lysis", True, 900, 910, "gone", "gone", None),
        ),
    )  # fmt: skip
    plain = ReportFindings(0, "none", False, False, False, "SD", False, False)
    frame = review_frame(
        [TEXT, "Stable disease <b>."],
        [found, plain],
        ["P<7>", "P8"],
        ["2024-03-01", "2024-04-01"],
        ["bone_scan", "ct"],
    )
    return review_page(frame, title="review & audit")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_text_is_escaped_and_the_page_is_self_contained(page):
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "P&lt;7&gt;" in page and "review &amp; audit" in page
    assert "Stable disease &lt;b&gt;." in page
    parsed = _Collect()
    parsed.feed(page)
    assert not [t for t, a in parsed.tags if t in ("script", "link", "img", "iframe")]
    assert not re.search(r"src\s*=|href=\"[^#]|url\(", page)  # no external assets
    assert '<a href="#r0">P&lt;7&gt; 2024-03-01</a>' in page  # the hedged report, linked
    assert 'id="r0"' in page and 'id="r1"' in page
    # the report text reads the same once the marks and context tags are taken away
    first = re.search(r'<p class="text">(.*?)</p>', page, re.DOTALL).group(1)
    first = re.sub(r'<span class="tag [nqk]">[^<]*</span>', "", first)
    assert html.unescape(re.sub(r"<[^>]+>", "", first)) == TEXT


def test_each_span_is_marked_in_its_fields_colour_with_its_context(page):
    marks = re.findall(r'<mark class="([^"]*)" style="([^"]*)"[^>]*>(.*?)</mark>', page)
    by_text = {text.split("<span")[0]: (cls, style) for cls, style, text in marks}
    cls, style = by_text["new lytic lesion"]
    assert "neg" in cls and FIELD_COLOURS["new_lesion_morphology"] in style
    cls, style = by_text["new focus of uptake"]
    assert "hedge" in cls and FIELD_COLOURS["new_bone_lesions"] in style
    cls, _ = by_text["sclerosis of the known L2 lesion"]
    assert "hist" in cls
    assert "hedge" not in by_text["PR liver"][0] and "neg" not in by_text["PR liver"][0]
    assert page.count('<span class="tag q">?</span>') == 2  # the span and the legend
    assert page.count('<span class="tag n">no</span>') == 2
    assert page.count('<span class="tag k">known</span>') == 2


def test_values_table_cards_and_lost_evidence(page):
    assert page.count('<section class="card') == 2
    assert page.count('class="card flag"') == 1  # the hedged report only
    assert "Bone scan" in page and ">CT<" in page
    assert "Evidence not located in the text" in page and "gone" in page
    values = re.findall(r'<td class="v">([^<]*)</td>', page)
    assert values[:2] == ["1", "unknown"]  # new bone lesions, morphology first
    assert "PR" in values and "SD" in values
