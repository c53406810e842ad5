r"""The errata of the paper, as one machine-readable list.

Every entry has a *kind*, so that a reader can tell a wrong equation from a
typo:

* ``"formula"``: a printed expression is wrong; the entry names the pytest
  node that shows the printed version failing an independent check and the
  corrected one passing;
* ``"text"``: a slip of the prose (a wrong symbol or word); the entry quotes
  the printed text and what it should say;
* ``"convention"``: the paper's sections use inconsistent conventions; the
  entry quotes them and names the test that checks the book's choice;
* ``"sharpening"``: the printed statement is true but weaker than what holds;
  the entry states the sharper result and names the test that shows it.

:func:`errata_table` turns the list into rows for the book's errata page;
``tests/test_errata.py`` checks that every entry is complete and that every
named test exists.

Expressions are LaTeX.  Unless stated otherwise, App. H expressions are
quoted and corrected in App. H's own scaling (data ``x ~ N(0, I_d)``,
unit-norm sphere), which differs from the book's ``x ~ N(0, I_d/d)`` by
overall powers of d (see :mod:`mdlib.landscape`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

__all__ = ["Erratum", "ERRATA", "KINDS", "errata_table", "printed_hessian_eq67", "printed_hessian_eq83"]

KINDS = {
    "formula": "a printed expression is wrong",
    "text": "a slip of the prose",
    "convention": "sections use inconsistent conventions",
    "sharpening": "a correct statement that can be made sharper",
}


@dataclass(frozen=True)
class Erratum:
    """One erratum.

    Attributes
    ----------
    id : str
        Short unique identifier.
    kind : str
        One of :data:`KINDS`.
    location : str
        Equation(s) / section of the paper.
    paper : str
        The expression as printed (LaTeX), or for ``"text"`` and
        ``"convention"`` kinds the printed words (MyST, quoted).
    corrected : str
        The corrected expression (LaTeX), or the words it should read.
    explanation : str
        One or two sentences.
    test : str
        Pytest node id demonstrating it, e.g.
        ``"tests/test_theory.py::test_erratum_eq44_scaling"`` (empty for
        ``"text"`` errata, which quote the paper instead).
    evidence : str
        Optional short summary of the numbers the test finds.
    """

    id: str
    kind: str
    location: str
    paper: str
    corrected: str
    explanation: str
    test: str
    evidence: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"erratum {self.id}: kind must be one of {sorted(KINDS)}, got {self.kind!r}")
        if self.kind != "text" and not self.test:
            raise ValueError(f"erratum {self.id}: a {self.kind} erratum needs a test")

    @property
    def is_formula(self) -> bool:
        """True when ``paper`` and ``corrected`` are LaTeX (formula and sharpening kinds)."""
        return self.kind in ("formula", "sharpening")


ERRATA: list[Erratum] = [
    Erratum(
        id="eq12-17-sign",
        kind="formula",
        location="App. B, Eqs. 12–14 and 17",
        paper=r"m_j^{\nu+1} - m_j^\nu = 2\frac{\gamma}{pd}\,\mathcal{E}^\nu a_j \lambda_j \lambda_\star"
              r" \quad(\text{likewise } a_j,\ Q_{jl})",
        corrected=r"m_j^{\nu+1} - m_j^\nu = -2\frac{\gamma}{pd}\,\mathcal{E}^\nu a_j \lambda_j \lambda_\star"
                  r" \quad(\text{minus sign on the first-order terms of } a_j,\ m_j,\ Q_{jl})",
        explanation="With the displacement E = f - y of Eq. 16, the increments as printed are those of "
                    "gradient ascent; SGD (Eq. 25) gives a minus sign. Eq. 26a has the correct sign.",
        test="tests/test_ode.py::test_erratum_eq12_to_17_sign",
        evidence="As printed, projected p = 1 gives dm/dt = m[-4(1+6γ)(1-m²) - 2γΔ] instead of Eq. 7.",
    ),
    Erratum(
        id="appc2-expansions",
        kind="formula",
        location="App. C.2, term-by-term expansions",
        paper=r"4\frac{\gamma}{p}\mathcal{E}^2 a_j a_l\lambda_j\lambda_l = 16\frac{\gamma}{p} a_j a_l[\dots];\ "
              r"2a_j\mathbb{E}[\mathcal{E}\lambda_j\lambda_*] = \dots - 2\mathbb{E}[\lambda_*^2\lambda_j\lambda_*];\ "
              r"2(a_j + a_l)\mathbb{E}[\mathcal{E}\lambda_j\lambda_*] = \dots",
        corrected=r"4\frac{\gamma}{p} a_j a_l\,\mathbb{E}[\mathcal{E}^2\lambda_j\lambda_l] = 4\frac{\gamma}{p} a_j "
                  r"a_l[\dots];\ "
                  r"\dots - 2a_j\mathbb{E}[\lambda_*^2\lambda_j\lambda_*];\ "
                  r"2(a_j + a_l)\mathbb{E}[\mathcal{E}\lambda_j\lambda_l] = \dots",
        explanation="Three slips in the expansions behind Eq. 26: the prefactor of the E² term is 4γ/p, not 16γ/p; "
                    "the teacher term of the m-drift lacks a_j; the Q-drift expectation is E[Eλ_jλ_l], not E[Eλ_jλ_*].",
        test="tests/test_ode.py::test_erratum_appC2_expansions",
    ),
    Erratum(
        id="eq26b-mm-over-k",
        kind="formula",
        location="App. C.2, Eq. 26b",
        paper=r"8\Big(\frac{mm^\top}{k} - \frac{Q^2}{p}\Big)",
        corrected=r"8\Big(mm^\top - \frac{Q^2}{p}\Big)",
        explanation="A stray k (the number of teachers in a more general setting): the coefficient of mmᵀ in the "
                    "Q-drift is 8, as the general drift computed from exact Gaussian moments shows.",
        test="tests/test_ode.py::test_erratum_eq26b_mm_over_k",
    ),
    Erratum(
        id="eq29-expansion",
        kind="formula",
        location="App. D.1, Eq. 29 (last line)",
        paper=r"m_j + \frac1d\Big[\frac{\gamma}{p}\lambda_\star\mathcal{E}\lambda_j - "
              r"\frac{m_j}{2}\Big(2\frac{\gamma}{p}"
              r"\mathcal{E}\lambda_j^2 + \frac{\gamma^2}{p^2}\mathcal{E}\lambda_j^2\Big)\Big]",
        corrected=r"m_j + \frac1d\Big[\frac{2\gamma}{p}\lambda_\star\mathcal{E}\lambda_j - "
                  r"\frac{m_j}{2}\Big(\frac{4\gamma}{p}"
                  r"\mathcal{E}\lambda_j^2 + \frac{4\gamma^2}{p^2}\mathcal{E}^2\lambda_j^2\Big)\Big]",
        explanation="Each term of the O(1/d) projected step is too small by 2 or 4 and the last one has E in place "
                    "of E² (with E = y - f as in the line that follows); the corrected step matches the exact "
                    "normalised update sample by sample.",
        test="tests/test_ode.py::test_erratum_eq29_expansion",
    ),
    Erratum(
        id="sec2-learning-rate-bound",
        kind="sharpening",
        location="Sec. 2 (after Eq. 7); poster",
        paper=r"0 < \gamma < 1/6",
        corrected=r"0 < \gamma < \frac{2}{12 + \Delta}\quad"
                  r"\Big(\text{width } p:\ \gamma < \frac{p}{1 + 1/p + 4/p^2 + \Delta/2}\Big)",
        explanation="The printed bound is correct as a necessary condition. Learning needs the linear rate "
                    "4(1-6γ) - 2γΔ of Eq. 7 to be positive, i.e. the fixed point m*² = 1 - γΔ/(2(1-6γ)) in "
                    "(0, 1]: γ < 2/(12 + Δ), which is also sufficient. The two bounds differ by a relative "
                    "Δ/12, so only when Δ is of order 1 (at the paper's Δ = 1e-4, by 1e-5).",
        test="tests/test_theory.py::test_erratum_learning_rate_bound",
        evidence="Δ = 1, γ = 0.16 < 1/6: the ODE from m0 = 0.1 decays to m = 0 (no learning).",
    ),
    Erratum(
        id="eq44-scaling",
        kind="formula",
        location="App. E.2, Eq. 44",
        paper=r"\mathcal{R}(t) - \frac{\Delta}{2} = 1 + \frac1p + \frac{d\tau_0}{p^2} e^{-2\omega_Q t}"
              r" - \frac{2 d\mu_0}{p} e^{2\omega_M t}",
        corrected=r"\mathcal{R}(t) - \frac{\Delta}{2} = 1 + \frac1p + \frac{\tau_0}{d p^2} e^{-2\omega_Q t}"
                  r" - \frac{2\mu_0}{d p} e^{2\omega_M t}",
        explanation="With μ0/d = Σ m_j(0)² and τ0/d = Σ_{j≠l} Q_jl(0)² (Eq. 43) the overlaps enter Eq. 42 as "
                    "μ0/d and τ0/d, not dμ0 and dτ0; Eq. 45 and the exit times (46)-(47) use the corrected form.",
        test="tests/test_theory.py::test_erratum_eq44_scaling",
    ),
    Erratum(
        id="sec3-minimal-exit-time-parentheses",
        kind="formula",
        location="Sec. 3, text after 'minimal escaping time'",
        paper=r"t_{\rm ext}^{\rm (anl)} = 1/4 \log(T(p+1)d + (p+1)(1-T)/2p)",
        corrected=r"t_{\rm ext}^{\rm (anl)} = \frac14 \log\frac{T(p+1)d + (p+1)(1-T)}{2p}",
        explanation="The whole numerator is divided by 2p (Eq. 47 at γ = γ_opt, where 2ω_M = 4).",
        test="tests/test_theory.py::test_erratum_sec3_minimal_exit_time",
    ),
    Erratum(
        id="eq61-noise-sign",
        kind="formula",
        location="App. H, Eq. 61",
        paper=r"\nabla^2\ell(w) = 2(3\lambda^2 - \lambda_*^2 + \sqrt{\Delta} z)\,xx^\top",
        corrected=r"\nabla^2\ell(w) = 2(3\lambda^2 - \lambda_*^2 - \sqrt{\Delta} z)\,xx^\top",
        explanation="2(2λ² - E) with E = λ*² + √Δ z - λ² (Eq. 58) gives -√Δ z; the sign does not matter "
                    "for the population Hessian (z has mean 0) but does per sample.",
        test="tests/test_landscape.py::test_erratum_eq61_noise_sign",
    ),
    Erratum(
        id="eq63-risk-factor",
        kind="formula",
        location="App. H, Eqs. 63 and 69",
        paper=r"\mathcal{R}(m, q) = \Delta/2 + 3\rho^2 + 3q^2 - 4m^2 - 2\rho q,\qquad \mathcal{R}(0) = "
              r"\frac{\Delta}{2} + 3\rho^2",
        corrected=r"\mathcal{R}(m, q) = \frac{\Delta}{2} + \frac12\big(3\rho^2 + 3q^2 - 4m^2 - 2\rho q\big),"
                  r"\qquad \mathcal{R}(0) = \frac{\Delta}{2} + \frac32\rho^2",
        explanation="E[(λ*² - λ²)²]/2 carries a factor 1/2 (Eq. 6 at p = 1); only the corrected form gives "
                    "Eq. 80, 2(1 - m²) + Δ/2, on the sphere and the gradient of Eq. 65.",
        test="tests/test_landscape.py::test_erratum_eq63_risk_factor",
    ),
    Erratum(
        id="eq64-moments",
        kind="formula",
        location="App. H, Eq. 64",
        paper=r"\mathbb{E}[\lambda_\star^2 \lambda x] = \rho\theta + 2m w_\star,\quad "
              r"\mathbb{E}[\lambda_\star^3 x] = 3q w",
        corrected=r"\mathbb{E}[\lambda_\star^2 \lambda x] = \frac{\rho w + 2m w_\star}{d},\quad"
                  r" \mathbb{E}[\lambda^3 x] = \frac{3q w}{d}",
        explanation="Typos: θ stands for w, and the cubic moment needed for Eq. 65 is that of λ, not λ*"
                    " (E[λ*³x] = 3ρ w*/d). With the paper's data x ~ N(0, I_d/d) (Eq. 2) and the overlaps of "
                    "Eq. 62, which are normalised by d, both moments carry a factor 1/d (Stein's lemma: "
                    "E[g(x) x] = E[∇g]/d); the printed ones are those of x ~ N(0, I_d) with unnormalised "
                    "overlaps, the scaling App. H uses from Eq. 64 on.",
        test="tests/test_errata.py::test_erratum_eq64_moments_scaling",
    ),
    Erratum(
        id="eq66-67-hessian",
        kind="formula",
        location="App. H, Eqs. 66–67",
        paper=r"\mathbb{E}[\lambda_\star^2 xx^\top] = \rho I_d + w_\star w_\star^\top,\quad"
              r"\mathbb{E}[\lambda^2 xx^\top] = qI_d + ww^\top,\qquad"
              r"\nabla^2_w\mathcal{R} = 2\big(-(\rho - 3q)I_d + 3ww^\top - w_\star w_\star^\top\big)",
        corrected=r"\mathbb{E}[\lambda_\star^2 xx^\top] = \rho I_d + 2w_\star w_\star^\top,\quad"
                  r"\mathbb{E}[\lambda^2 xx^\top] = qI_d + 2ww^\top,\qquad"
                  r"\nabla^2_w\mathcal{R} = 2\big(-(\rho - 3q)I_d + 6ww^\top - 2w_\star w_\star^\top\big)",
        explanation="Isserlis gives E[λ² x_a x_b] = q δ_ab + 2 w_a w_b, and likewise E[λ*² x_a x_b] = "
                    "ρ δ_ab + 2 w*_a w*_b: both rank-one terms of Eq. 66 miss a factor 2 (in App. H's scaling, "
                    "x ~ N(0, I_d)). The corrected Hessian is the Jacobian of the gradient of Eq. 65 and matches "
                    "finite differences and Monte Carlo.",
        test="tests/test_errata.py::test_erratum_eq66_67_moments_and_hessian",
    ),
    Erratum(
        id="eq68-72-spectra",
        kind="formula",
        location="App. H, Eqs. 68, 70, 72",
        paper=r"\nabla^2\mathcal{R}(0) = -2(\rho I_d + w_\star w_\star^\top)\ (\text{eig. } -2(\rho+1)),\ "
              r"\nabla^2\mathcal{R} = 2(3ww^\top - w_\star w_\star^\top),\ "
              r"\nabla^2\mathcal{R}(\pm w_\star) = 4(\rho I_d + w_\star w_\star^\top)",
        corrected=r"\nabla^2\mathcal{R}(0) = -2(\rho I_d + 2w_\star w_\star^\top)\ (\text{eig. } -6\rho),\ "
                  r"\nabla^2\mathcal{R} = 4(3ww^\top - w_\star w_\star^\top)\ (\text{eig. } \pm 4\rho),\ "
                  r"\nabla^2\mathcal{R}(\pm w_\star) = 4(\rho I_d + 2w_\star w_\star^\top)\ (\text{eig. } 12\rho)",
        explanation="Consequences of the Hessian erratum (Eq. 67) at the critical points; the nature of each "
                    "point (maximum, saddle ring at q = ρ/3, minima) is unchanged.",
        test="tests/test_landscape.py::test_erratum_eq68_72_spectra",
    ),
    Erratum(
        id="eq71-saddle-risk",
        kind="formula",
        location="App. H, Eq. 71",
        paper=r"\mathcal{R}(0, \rho/3) = \frac{\Delta}{2} + \frac{10}{3}\rho^2",
        corrected=r"\mathcal{R}(0, \rho/3) = \frac{\Delta}{2} + \frac{4}{3}\rho^2",
        explanation="Eq. 63 (corrected) at m = 0, q = ρ/3; the printed value matches neither the corrected "
                    "nor the printed Eq. 63 (which would give 8ρ²/3).",
        test="tests/test_landscape.py::test_erratum_eq71_saddle_risk",
    ),
    Erratum(
        id="eq79-sample-riemannian-hessian",
        kind="formula",
        location="App. H.1, Eq. 79",
        paper=r"\mathrm{Hess}_{\mathbb{S}^{d-1}}\ell(w) = (3\lambda^2 - \lambda_*^2)(xx^\top - \lambda\theta x^\top)"
              r" + \mathcal{E}(w)\lambda^2 I_d",
        corrected=r"\mathrm{Hess}_{\mathbb{S}^{d-1}}\ell(w) = 2(3\lambda^2 - \lambda_*^2 - \sqrt{\Delta}z)"
                  r"(x - \lambda w)(x - \lambda w)^\top + 2\mathcal{E}(w)\lambda^2 (I_d - ww^\top)",
        explanation="The Riemannian Hessian is P∇²ℓP - (w·∇ℓ)P with P = I - wwᵀ and w·∇ℓ = -2Eλ²; the printed "
                    "one misses the factors 2, is not symmetric and its mean is not the population Hessian.",
        test="tests/test_landscape.py::test_erratum_eq79_sample_hessian",
    ),
    Erratum(
        id="eq83-85-riemannian-hessian",
        kind="formula",
        location="App. H.1, Eqs. 83 and 85",
        paper=r"\mathrm{Hess}_{\mathbb{S}^{d-1}}\mathcal{R}(w) = 4\big[m^2 I_d + m w w_\star^\top - w_\star "
              r"w_\star^\top\big],"
              r"\qquad \mathrm{Hess}\,\mathcal{R}(\pm w_\star) = 4 I_d",
        corrected=r"\mathrm{Hess}_{\mathbb{S}^{d-1}}\mathcal{R}(w) = 4\big[m^2 P - (w_\star - m w)(w_\star - m "
                  r"w)^\top\big],"
                  r"\ P = I_d - ww^\top,\qquad \mathrm{Hess}\,\mathcal{R}(\pm w_\star) = 4P",
        explanation="The printed matrix is not symmetric and not zero on the normal direction w; it has the "
                    "right quadratic form on tangent vectors, so the conclusions (saddle at m = 0, minima at ±w*) "
                    "hold.",
        test="tests/test_landscape.py::test_erratum_eq83_riemannian_hessian",
    ),
    Erratum(
        id="eq84-flat-directions",
        kind="formula",
        location="App. H.1, text after Eq. 84; Figure 4 caption",
        paper=r"d - 1 \text{ eigenvalues } 0 \text{ (flat directions)}",
        corrected=r"d - 2 \text{ flat tangent directions } (= d - p - 1 \text{ at } p = 1)",
        explanation="The sphere has d - 1 tangent directions and one of them (towards w*) has curvature -4; "
                    "the d×d matrix's d-th zero eigenvalue is the normal direction w, which is not a direction "
                    "on the sphere. App. B correctly counts d - p - 1 flat directions.",
        test="tests/test_landscape.py::test_erratum_eq84_flat_directions",
    ),
    Erratum(
        id="eq55-gamma-terms",
        kind="formula",
        location="App. G.3, Eq. 55",
        paper=r"\mathrm{Var}[\mathcal{Q}_{11}] = \dots - 11136\gamma + 31104\gamma^2 + \dots,\quad"
              r" \mathrm{Cov}[\mathcal{M}_1, \mathcal{Q}_{11}] = \dots - 1440\gamma m + \dots",
        corrected=r"\text{every coefficient of } \gamma^k \text{ multiplied by } 2^k:\quad"
                  r" -22272\gamma + 124416\gamma^2,\ \dots,\ -2880\gamma m,\ \dots",
        explanation="The printed variances are the exact covariance of the increments evaluated at γ/2, i.e. with "
                    "weight 2γ/p instead of the 4γ/p on the E² term of 𝒬 that Eq. 7 requires; Var[M] (no γ) is right. "
                    "The book computes Eq. 54 exactly from 12th-order Gaussian moments.",
        test="tests/test_sde.py::test_erratum_eq55_gamma_terms",
        evidence="At 10 random (m, γ, Δ) the printed polynomials equal the exact covariance at γ/2 to 1e-10 "
                 "and differ from it at γ.",
    ),
    Erratum(
        id="appd2-ito-var-q",
        kind="formula",
        location="App. D.2, Itô products after Eq. 33",
        paper=r"dq^2 = \frac{\gamma}{d}\,\sigma_m^2(\Omega)\,dt",
        corrected=r"dq^2 = \frac{\gamma}{d}\,\sigma_Q^2(\Omega)\,dt",
        explanation="The squared increment of the norm carries the variance of 𝒬, not of M, as the second-order "
                    "remainder of the exact normalised step shows. The Itô drift it feeds is small anyway "
                    "(relative size 3e-4 in the setting of Figure 1).",
        test="tests/test_sde.py::test_erratum_appD2_ito_uses_var_Q",
    ),
    Erratum(
        id="second-layer-learning-rate",
        kind="convention",
        location="App. B (after Eq. 17), Eq. 12, App. C.1 (Eq. 25)",
        paper=r"App. B: “we used γ/d as the learning rate of the second layer”; Eq. 12: "
              r"$a_j^{\nu+1} - a_j^\nu = +\frac{\gamma}{pd}\mathcal{E}^\nu\lambda_j^2$; App. C.1: “Using γ as "
              r"learning rate for the weights $w_j$ and γ/p for the second layer”, followed by Eq. 25, "
              r"$a_j^{\nu+1} = a_j^\nu - \frac{\gamma}{pd}\mathcal{E}^\nu(\lambda_j^\nu)^2$",
        corrected=r"One convention throughout: the second layer's learning rate is γ/d, "
                  r"$a_j \leftarrow a_j - \frac{\gamma}{d}\,\partial_{a_j}\ell = "
                  r"a_j - \frac{\gamma}{pd}\,\mathcal{E}\lambda_j^2$ with $\mathcal{E} = f - y$ (descent)",
        explanation="The three places disagree on the scale (γ/d in App. B, γ/p in the words of App. C.1, whose "
                    "own Eq. 25 is the γ/d step) and on the sign (Eq. 12 has the ascent sign of Eqs. 12–17, see "
                    "the first erratum). Only γ/d moves a on the time scale t = νγ/(pd) of m and Q: with γ/p "
                    "the drift of a per unit t would be d/p times larger and diverge with d. The book uses γ/d "
                    "and the descent sign (Setup chapter, conventions).",
        test="tests/test_errata.py::test_convention_second_layer_rate",
        evidence="The mean one-step move of a at rate γ/d, per unit of t, equals the ODE's da/dt; at rate γ/p "
                 "it is d/p times larger.",
    ),
    Erratum(
        id="appf-appi-init-scale",
        kind="text",
        location="App. F (after Eq. 52); App. I (second paragraph)",
        paper=r"App. F: “the initial condition we used in the rest of the manuscript, where "
              r"$m \sim \mathcal{N}(0, 1/\sqrt{a})$”; App. I: “At random initialization, this is of order "
              r"$1/\sqrt{a}$”",
        corrected=r"$m \sim \mathcal{N}(0, 1/d)$, i.e. $m$ of order $1/\sqrt{d}$ (Eqs. 19 and 87)",
        explanation="A slip of the symbol: the random start has m ~ N(0, 1/d) (Eq. 19; variance 1/d, scale "
                    "1/√d), as Eq. 87 says; a denotes the second layer.",
        test="",
    ),
    Erratum(
        id="appi-first-layer",
        kind="text",
        location="App. I (first two paragraphs)",
        paper=r"“we provide numerical evidence that training the first layer does not significantly change our "
              r"conclusions”; “by training the first layer we can't measure $t_{\rm ext}$ as the time needed to "
              r"escape the risk at initialization”",
        corrected=r"“training the **second** layer” (both places)",
        explanation="App. I is about training the second layer a (the first layer is always trained), as its "
                    "title, its Figure 5 and the sentence before (“fixed first layer weights a_j = 1”, itself "
                    "a slip for the second layer) show.",
        test="",
    ),
    Erratum(
        id="sec3-index-set",
        kind="text",
        location="Sec. 3 (first paragraph)",
        paper=r"“the second layer is fixed at initialization $a_j^0 = 1, \forall j \in [n]$”",
        corrected=r"$a_j^0 = 1,\ \forall j \in [p]$",
        explanation="The second layer has p weights, one per hidden unit; n is the number of samples.",
        test="",
    ),
]


def errata_table():
    """Rows for the book's errata page, one dict per erratum (field order of :class:`Erratum`).

    Returns
    -------
    list of dict
        Keys ``id, location, paper, corrected, explanation, test, evidence``.
    """
    return [asdict(e) for e in ERRATA]


ERRATUM_FIELDS = tuple(f.name for f in fields(Erratum))


# --------------------------------------------------------------------------
# printed expressions, for comparison with the corrected ones (mdlib.landscape)
# --------------------------------------------------------------------------

def printed_hessian_eq67(w, w_star):
    r"""Eq. 67 as printed, converted to the book's scaling (erratum ``eq66-67-hessian``).

    .. math::  \frac2d\Big[(3q - \rho)I_d + \frac3d\,ww^\top - \frac1d\,w_\star w_\star^\top\Big],

    whose rank-one coefficients ``3`` and ``-1`` should be ``6`` and ``-2``
    (:func:`mdlib.landscape.hess_euclidean`).
    """
    from .landscape import overlaps

    m, q, rho = overlaps(w, w_star)
    w, w_star = np.asarray(w, dtype=float), np.asarray(w_star, dtype=float)
    d = w.size
    return 2 / d * ((3 * q - rho) * np.eye(d) + 3 / d * np.outer(w, w) - 1 / d * np.outer(w_star, w_star))


def printed_hessian_eq83(w, w_star):
    r"""Eq. 83 as printed, converted to the book's scaling (erratum ``eq83-85-riemannian-hessian``).

    .. math::  \frac4d\Big[m^2 I_d + \frac md\,w w_\star^\top - \frac1d\,w_\star w_\star^\top\Big]

    (``|w|² = |w_⋆|² = d``): not symmetric and not zero on the normal
    direction ``w``, although its quadratic form on tangent vectors is that
    of :func:`mdlib.landscape.hess_sphere`.
    """
    from .landscape import overlaps

    m = overlaps(w, w_star)[0]
    w, w_star = np.asarray(w, dtype=float), np.asarray(w_star, dtype=float)
    d = w.size
    return 4 / d * (m**2 * np.eye(d) + m / d * np.outer(w, w_star) - np.outer(w_star, w_star) / d)
