from .experiment_analysis import ExperimentAnalysis

__all__ = ["ExperimentAnalysis"]
