"""Delivery areas (point in polygon) and coordinate systems (hub/domain/geo.py)."""
from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hub.domain.geo import (
    bd09_to_gcj02,
    distance_km,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_polygon,
    polygon_area,
    self_intersection,
    wgs84_to_gcj02,
)

SQUARE = [(31.20, 121.40), (31.20, 121.50), (31.30, 121.50), (31.30, 121.40)]
# A U opening north: the notch (31.22..31.30 x 121.43..121.47) is outside, both arms inside.
U_SHAPE = [(31.20, 121.40), (31.20, 121.50), (31.30, 121.50), (31.30, 121.47),
           (31.22, 121.47), (31.22, 121.43), (31.30, 121.43), (31.30, 121.40)]


def test_inside_and_outside_a_square():
    assert in_polygon(31.25, 121.45, SQUARE)
    assert not in_polygon(31.35, 121.45, SQUARE)
    assert not in_polygon(31.25, 121.39, SQUARE)
    assert not in_polygon(31.19999, 121.45, SQUARE)


@pytest.mark.parametrize("point", [(31.20, 121.45), (31.30, 121.45), (31.25, 121.40), (31.25, 121.50),
                                   (31.20, 121.40), (31.30, 121.50)])
def test_a_point_on_an_edge_or_a_vertex_is_inside(point):
    assert in_polygon(*point, SQUARE)
    assert in_polygon(*point, list(reversed(SQUARE)))         # either winding


def test_a_concave_area_leaves_its_notch_out():
    assert in_polygon(31.25, 121.41, U_SHAPE) and in_polygon(31.25, 121.49, U_SHAPE)   # the arms
    assert in_polygon(31.21, 121.45, U_SHAPE)                                           # the base
    assert not in_polygon(31.25, 121.45, U_SHAPE)                                       # the notch
    assert in_polygon(31.26, 121.43, U_SHAPE) and in_polygon(31.22, 121.45, U_SHAPE)   # the notch's edges
    # A ray from the notch's level through the arms' vertices at 31.30 crosses nothing twice.
    assert not in_polygon(31.30, 121.45, U_SHAPE) and in_polygon(31.30, 121.41, U_SHAPE)


def test_too_few_points_is_no_area():
    assert not in_polygon(31.25, 121.45, SQUARE[:2])


def test_shape_checks_config_relies_on():
    assert polygon_area(SQUARE) != 0 and polygon_area([(0, 0), (1, 1), (2, 2)]) == 0
    assert self_intersection(SQUARE) is None and self_intersection(U_SHAPE) is None
    bow_tie = [(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)]
    assert self_intersection(bow_tie) == (0, 2)


# -- property: ray casting agrees with a reference on star-shaped (mostly concave) areas -------------

CENTRE = (31.23, 121.47)


def _star(radii: list[float]) -> list[tuple[float, float]]:
    n = len(radii)
    return [(CENTRE[0] + r * math.sin(2 * math.pi * k / n), CENTRE[1] + r * math.cos(2 * math.pi * k / n))
            for k, r in enumerate(radii)]


def _reference_inside(radii: list[float], lat: float, lng: float) -> tuple[bool, float]:
    """Star-shaped around CENTRE: inside iff nearer the centre than the boundary along the same ray.
    Returns (inside, how far the point is from that boundary, in degrees)."""
    n = len(radii)
    dy, dx = lat - CENTRE[0], lng - CENTRE[1]
    angle = math.atan2(dy, dx) % (2 * math.pi)
    k = int(angle / (2 * math.pi / n)) % n
    (ay, ax), (by, bx) = _star(radii)[k], _star(radii)[(k + 1) % n]
    # Where the ray from the centre at `angle` meets edge k (a line through a and b).
    ux, uy = math.cos(angle), math.sin(angle)
    ex, ey = bx - ax, by - ay
    ox, oy = ax - CENTRE[1], ay - CENTRE[0]
    denom = ux * ey - uy * ex
    t = (ox * ey - oy * ex) / denom
    dist = math.hypot(dx, dy)
    return dist < t, abs(dist - t)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(radii=st.lists(st.floats(0.005, 0.05), min_size=3, max_size=12),
       lat_off=st.floats(-0.06, 0.06), lng_off=st.floats(-0.06, 0.06))
def test_ray_casting_matches_the_star_reference(radii, lat_off, lng_off):
    lat, lng = CENTRE[0] + lat_off, CENTRE[1] + lng_off
    assume(math.hypot(lat_off, lng_off) > 1e-9)
    inside, margin = _reference_inside(radii, lat, lng)
    assume(margin > 1e-6)                     # near the boundary the two may round differently
    assert in_polygon(lat, lng, _star(radii)) is inside


@settings(max_examples=200, deadline=None)
@given(radii=st.lists(st.floats(0.005, 0.05), min_size=3, max_size=12), edge=st.integers(0, 11),
       t=st.floats(0, 1))
def test_every_point_of_every_edge_is_inside(radii, edge, t):
    points = _star(radii)
    a, b = points[edge % len(points)], points[(edge + 1) % len(points)]
    assert in_polygon(a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]), points)


# -- coordinate systems ------------------------------------------------------------------------------

def test_baidu_shifts_a_known_point_by_its_published_offset():
    # Tiananmen: GCJ-02 (39.90861, 116.39745) is BD-09 (39.915, 116.404) on Baidu's maps.
    lat, lng = gcj02_to_bd09(39.90861, 116.39745)
    assert abs(lat - 39.915) < 1e-4 and abs(lng - 116.404) < 1e-3


def test_gcj02_is_a_few_hundred_metres_off_gps_in_china_and_nothing_abroad():
    shifted = wgs84_to_gcj02(31.2291, 121.4484)
    assert 0.2 < distance_km(31.2291, 121.4484, *shifted) < 0.8
    assert wgs84_to_gcj02(48.8584, 2.2945) == (48.8584, 2.2945)     # Paris: GCJ-02 is WGS-84 abroad
    assert gcj02_to_wgs84(48.8584, 2.2945) == (48.8584, 2.2945)


CHINA = st.tuples(st.floats(18.0, 53.0), st.floats(74.0, 134.0))


@settings(max_examples=200, deadline=None)
@given(point=CHINA)
def test_conversions_round_trip(point):
    lat, lng = point
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lat, lng))
    assert distance_km(lat, lng, *back) < 1e-5                     # within a centimetre
    back = bd09_to_gcj02(*gcj02_to_bd09(lat, lng))
    assert distance_km(lat, lng, *back) < 1e-3                     # BD-09's inverse is approximate: under a metre
