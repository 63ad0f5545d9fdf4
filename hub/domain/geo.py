"""Distances, delivery areas and coordinate systems.

Coordinates in config.yaml and on orders are GCJ-02 (国测局, 高德/腾讯/WeChat's `chooseLocation`), as the
platforms' delivery areas (Meituan `shipping/save`) and the couriers (Dada, SF 同城 `lbs_type` 2) use; a
system that wants another one is given a converted point (`gcj02_to_bd09` for Baidu, `gcj02_to_wgs84`
for GPS), never a config in another system.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

EARTH_RADIUS_KM = 6371.0088
# A point this close (in degrees, about 1 cm) to an area's edge is on the edge.
EDGE_TOLERANCE_DEG = 1e-7

LatLng = tuple[float, float]


def distance_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Haversine distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


# -- delivery areas: point in polygon ---------------------------------------------------------------

def on_segment(lat: float, lng: float, a: LatLng, b: LatLng, tol: float = EDGE_TOLERANCE_DEG) -> bool:
    """Whether (lat, lng) lies on the segment a-b, within `tol` degrees."""
    (ay, ax), (by, bx) = a, b
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    if length2 == 0.0:
        return abs(lat - ay) <= tol and abs(lng - ax) <= tol
    # The nearest point of the segment, then its distance: both in degrees (a city is flat enough).
    t = max(0.0, min(1.0, ((lng - ax) * dx + (lat - ay) * dy) / length2))
    return math.hypot(lng - (ax + t * dx), lat - (ay + t * dy)) <= tol


def in_polygon(lat: float, lng: float, points: Sequence[LatLng]) -> bool:
    """Whether (lat, lng) is inside the polygon `points` (lat, lng; closed implicitly, either winding).

    Ray casting: a ray from the point towards +lng crosses the boundary an odd number of times from inside,
    which holds for concave areas too. A point on an edge or a vertex counts as inside: a buyer on the
    boundary street of an area the store drew is one it meant to serve, and two adjacent areas then both
    claim their shared edge (the first in config order wins, as for any overlap)."""
    n = len(points)
    if n < 3:
        return False
    if any(on_segment(lat, lng, points[i], points[(i + 1) % n]) for i in range(n)):
        return True
    inside = False
    for i in range(n):
        (yi, xi), (yj, xj) = points[i], points[(i + 1) % n]
        # Half-open in lat, so a ray through a vertex counts the two edges meeting there once together.
        if (yi > lat) != (yj > lat):
            x_cross = xi + (lat - yi) * (xj - xi) / (yj - yi)
            if lng < x_cross:
                inside = not inside
    return inside


def polygon_area(points: Sequence[LatLng]) -> float:
    """The polygon's signed area in square degrees (shoelace): 0 for a degenerate one."""
    n = len(points)
    return sum(points[i][1] * points[(i + 1) % n][0] - points[(i + 1) % n][1] * points[i][0]
               for i in range(n)) / 2.0


def _cross(o: LatLng, a: LatLng, b: LatLng) -> float:
    return (a[1] - o[1]) * (b[0] - o[0]) - (a[0] - o[0]) * (b[1] - o[1])


def _segments_cross(p1: LatLng, p2: LatLng, q1: LatLng, q2: LatLng) -> bool:
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and 0 not in (d1, d2, d3, d4):
        return True
    return (d1 == 0 and on_segment(*p1, q1, q2, 0.0)) or (d2 == 0 and on_segment(*p2, q1, q2, 0.0)) or \
        (d3 == 0 and on_segment(*q1, p1, p2, 0.0)) or (d4 == 0 and on_segment(*q2, p1, p2, 0.0))


def self_intersection(points: Sequence[LatLng]) -> tuple[int, int] | None:
    """The first two edges (by the index of their first point) that cross, if any: a bow-tie area has no
    inside a store could mean. Adjacent edges share their vertex and are not compared."""
    n = len(points)
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue                    # the closing edge meets the first at points[0]
            if _segments_cross(points[i], points[(i + 1) % n], points[j], points[(j + 1) % n]):
                return i, j
    return None


# -- coordinate systems (GCJ-02 <-> WGS-84, GCJ-02 <-> BD-09) -----------------------------------------

_A = 6378245.0                      # Krasovsky 1940, the ellipsoid GCJ-02's offset is defined on
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0


def outside_china(lat: float, lng: float) -> bool:
    """GCJ-02 shifts points in mainland China only (this is the usual bounding box); elsewhere it is WGS-84."""
    return not (72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _shift(lat: float, lng: float) -> LatLng:
    x, y = lng - 105.0, lat - 35.0
    d_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
             + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
             + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
             + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0)
    d_lng = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
             + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
             + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
             + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(rad) ** 2
    sqrt_magic = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * math.pi)
    d_lng = (d_lng * 180.0) / (_A / sqrt_magic * math.cos(rad) * math.pi)
    return d_lat, d_lng


def wgs84_to_gcj02(lat: float, lng: float) -> LatLng:
    """A GPS (WGS-84) point as GCJ-02: WeChat's `getLocation` answers WGS-84 unless asked for gcj02."""
    if outside_china(lat, lng):
        return lat, lng
    d_lat, d_lng = _shift(lat, lng)
    return lat + d_lat, lng + d_lng


def gcj02_to_wgs84(lat: float, lng: float) -> LatLng:
    """The inverse of `wgs84_to_gcj02`, by fixed-point iteration (the offset has no closed inverse); within
    a millimetre or so after a few rounds."""
    if outside_china(lat, lng):
        return lat, lng
    w_lat, w_lng = lat, lng
    for _ in range(30):
        g_lat, g_lng = wgs84_to_gcj02(w_lat, w_lng)
        e_lat, e_lng = g_lat - lat, g_lng - lng
        w_lat, w_lng = w_lat - e_lat, w_lng - e_lng
        if abs(e_lat) < 1e-10 and abs(e_lng) < 1e-10:
            break
    return w_lat, w_lng


def gcj02_to_bd09(lat: float, lng: float) -> LatLng:
    """GCJ-02 as Baidu's BD-09 (SF 同城 `lbs_type` 1, Baidu map links)."""
    z = math.sqrt(lng * lng + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lng) + 0.000003 * math.cos(lng * _X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def bd09_to_gcj02(lat: float, lng: float) -> LatLng:
    """Baidu's BD-09 as GCJ-02."""
    x, y = lng - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.sin(theta), z * math.cos(theta)


CONVERT_FROM_GCJ02 = {"gcj02": lambda lat, lng: (lat, lng), "wgs84": gcj02_to_wgs84, "bd09": gcj02_to_bd09}
CONVERT_TO_GCJ02 = {"gcj02": lambda lat, lng: (lat, lng), "wgs84": wgs84_to_gcj02, "bd09": bd09_to_gcj02}
