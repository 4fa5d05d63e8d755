"""Hippocampal spatial coding: rate maps, spatial information, place fields, grid score,
Bayesian decoding of position and replay detection."""

from .decoding import DecodingResult, PoissonDecoder, decode
from .fields import autocorrelogram, grid_score, place_fields
from .information import skaggs_information, sparsity, spatial_information, stability
from .occupancy import RateMaps, rate_maps
from .replay import candidate_events, detect_replay, line_fit_score, weighted_correlation
from .track import detect_laps, linearize, signed_velocity

__all__ = ["DecodingResult", "PoissonDecoder", "RateMaps", "autocorrelogram", "candidate_events", "decode",
           "detect_laps", "detect_replay", "line_fit_score", "weighted_correlation",
           "grid_score", "linearize", "place_fields", "rate_maps", "signed_velocity", "skaggs_information",
           "sparsity", "spatial_information", "stability"]
