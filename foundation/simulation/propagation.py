"""Propagation in a solenoid, as Delphes' ParticlePropagator does it (vectorized numpy).

Charged particles follow a helix in the field ``bz`` along z; neutral ones a straight line. For
each particle this gives the point where it leaves the field cylinder (where the calorimeters see
it and where Delphes evaluates tracking efficiencies) and, for charged ones, the transverse impact
parameter ``d0``, the longitudinal one ``dz`` and the azimuth at the point of closest approach to
the beam line (beam spot at the origin). Sign convention: ``d0 = (x_d p_y - y_d p_x) / pT`` at
that point.
Lengths in mm, momenta in GeV, field in tesla.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GEV_PER_TESLA_METRE = 0.299792458
"""pT [GeV] = 0.2998 |q| B [T] R [m]: the helix radius of a unit charge."""


@dataclass
class Propagated:
    """Where each particle leaves the field cylinder, and the track parameters of charged ones.

    Shapes:
        every array ``[P]``. ``inside``: produced inside the cylinder with pT^2 >= 1e-9 GeV^2
        (Delphes drops the others). ``eta``/``phi``: of the exit point. ``d0``, ``dz`` (mm) and
        ``phi_d`` (azimuth of the momentum at closest approach): 0, 0 and the momentum's azimuth
        for neutral particles.
    """

    inside: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    d0: np.ndarray
    dz: np.ndarray
    phi_d: np.ndarray


def propagate(
    px: np.ndarray,
    py: np.ndarray,
    pz: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    charge: np.ndarray,
    radius: float,
    half_length: float,
    bz: float,
) -> Propagated:
    """Exit points and impact parameters of particles produced at (x, y, z) with momentum p.

    Args:
        px, py, pz: momentum (GeV); x, y, z: production vertex (mm); charge: units of e.
        radius, half_length: the field cylinder (mm); bz: field (T).

    Shapes:
        every array ``[P]``; see :class:`Propagated` for the outputs.
    """
    pt2 = px * px + py * py
    pt = np.sqrt(pt2)
    inside = (np.hypot(x, y) <= radius) & (np.abs(z) <= half_length) & (pt2 >= 1e-9)
    safe_pt = np.where(pt > 0, pt, 1.0)
    safe_pz = np.where(pz != 0, pz, 1e-300)
    phi0 = np.arctan2(py, px)
    charged = (np.abs(charge) > 1e-9) & (abs(bz) > 1e-9)

    # Straight line: pt^2 t^2 + 2 (px x + py y) t - (R^2 - x^2 - y^2) = 0, or the end caps.
    exit_x, exit_y, exit_z = x.copy(), y.copy(), z.copy()
    n = ~charged
    if n.any():
        cross = px[n] * y[n] - py[n] * x[n]
        dot = px[n] * x[n] + py[n] * y[n]
        root = np.sqrt(np.maximum(pt2[n] * radius**2 - cross**2, 0.0))
        t_r = (root - dot) / np.where(pt2[n] > 0, pt2[n], 1.0)
        t_z = (np.copysign(half_length, pz[n]) - z[n]) / safe_pz[n]
        t = np.minimum(t_r, t_z)
        exit_x[n] += px[n] * t
        exit_y[n] += py[n] * t
        exit_z[n] += pz[n] * t

    d0 = np.zeros(len(px))
    dz = np.zeros(len(px))
    phi_d = phi0.copy()
    if charged.any():
        c = charged
        q = np.sign(charge[c])
        r = pt[c] / (charge[c] * bz * GEV_PER_TESLA_METRE) * 1000.0  # signed helix radius, mm
        x_c = x[c] + r * np.sin(phi0[c])
        y_c = y[c] - r * np.cos(phi0[c])
        r_c = np.hypot(x_c, y_c)
        # Turning angle omega*t to the point of closest approach, taken modulo pi into
        # [-pi/2, pi/2] as Delphes does ("remove all the modulo pi that might have come from atan").
        turn_d = phi0[c] + np.arctan2(x_c, y_c)
        turn_d = turn_d - np.pi * np.round(turn_d / np.pi)
        phi_at_d = phi0[c] - turn_d
        x_d = x_c - r * np.sin(phi_at_d)
        y_d = y_c + r * np.cos(phi_at_d)
        slope = pz[c] / safe_pt[c]  # dz / d(transverse path)
        d0[c] = x_d * np.sin(phi_at_d) - y_d * np.cos(phi_at_d)
        dz[c] = z[c] + turn_d * r * slope
        phi_d[c] = phi_at_d

        # Exit: the side at R (if the circle reaches it) or an end cap, whichever comes first,
        # in unsigned turning angle theta = |omega| t.
        abs_r = np.abs(r)
        theta_z = (np.copysign(half_length, pz[c]) - z[c]) / (safe_pz[c] / safe_pt[c]) / abs_r
        theta_z = np.where(pz[c] != 0, theta_z, np.inf)
        cosine = (r * r + r_c * r_c - radius**2) / np.maximum(2 * abs_r * r_c, 1e-300)
        alpha = np.arccos(np.clip(cosine, -1.0, 1.0))
        theta_r = np.where(r_c + abs_r < radius, np.inf, q * turn_d + alpha)
        turn = q * np.minimum(theta_r, theta_z)
        phi_t = phi0[c] - turn
        exit_x[c] = x_c - r * np.sin(phi_t)
        exit_y[c] = y_c + r * np.cos(phi_t)
        exit_z[c] = z[c] + turn * r * slope
    exit_r = np.hypot(exit_x, exit_y)
    inside &= exit_r > 0
    eta = np.arcsinh(exit_z / np.where(exit_r > 0, exit_r, 1.0))
    return Propagated(
        inside=inside,
        eta=eta,
        phi=np.arctan2(exit_y, exit_x),
        d0=d0,
        dz=dz,
        phi_d=phi_d,
    )
