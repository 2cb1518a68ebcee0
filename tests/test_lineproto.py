import math

import pytest

from plantems.lineproto import LineProtocolError, Point, format_line


@pytest.mark.parametrize(("point", "expected"), [
    (Point("electrical", {"site": "cs", "device": "mill-1"}, {"p_kw": 1520}, 1),
     "electrical,device=mill-1,site=cs p_kw=1520.0 1"),
    (Point("m x,y", {"a b": "c,d=e"}, {"f=g": 0.5}, 2),
     r"m\ x\,y,a\ b=c\,d\=e f\=g=0.5 2"),
    (Point("alert", {"rule": "peak"}, {"text": 'say "hi"\\now'}, 3),
     r'alert,rule=peak text="say \"hi\"\\now" 3'),
    (Point("status", {}, {"up": True, "n": -3}, 4), "status up=1.0,n=-3.0 4"),
], ids=["ints-become-floats", "escaping", "string-field", "bool-and-negative"])
def test_format_line(point, expected):
    assert format_line(point) == expected


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_is_rejected_with_names(bad):
    with pytest.raises(LineProtocolError, match=r"measurement 'electrical' field 'p_kw': value .* not finite"):
        format_line(Point("electrical", {"device": "d"}, {"p_kw": bad}, 1))


def test_empty_fields_and_tags_are_rejected():
    with pytest.raises(LineProtocolError, match="at least one field"):
        format_line(Point("m", {}, {}, 1))
    with pytest.raises(LineProtocolError, match="tag 'device' is empty"):
        format_line(Point("m", {"device": ""}, {"x": 1.0}, 1))
