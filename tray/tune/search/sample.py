"""Search-space primitives (Ray's ``ray.tune.search.sample``): a ``Domain`` describes where a
hyperparameter's values come from and how they are drawn; ``tune.uniform(0, 1)`` and friends
build them. ``grid_search`` is Ray's plain ``{"grid_search": [...]}`` dict."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any, Self


class Domain:
    """Where a value comes from; ``sample(spec, size, random_state)`` draws from it."""

    sampler: Sampler | None = None
    default_sampler_cls: type[Sampler] | None = None

    def set_sampler(self, sampler: Sampler, allow_override: bool = False) -> Self:
        if self.sampler is not None and not allow_override:
            raise ValueError(f"{self} already has a sampler ({self.sampler}); it cannot be set twice")
        self.sampler = sampler
        return self

    def get_sampler(self) -> Sampler:
        sampler = self.sampler
        if sampler is None:
            assert self.default_sampler_cls is not None
            sampler = self.default_sampler_cls()
        return sampler

    def sample(self, spec: Any = None, size: int = 1, random_state: random.Random | None = None) -> Any:
        rng: Any = random_state if random_state is not None else random
        values = [self.get_sampler().draw(self, spec, rng) for _ in range(size)]
        return values[0] if size == 1 else values

    def is_grid(self) -> bool:
        return False

    def is_function(self) -> bool:
        return False

    def is_valid(self, value: Any) -> bool:
        return True

    @property
    def domain_str(self) -> str:
        return "(unknown)"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.domain_str} sampler={self.get_sampler()}>"


class Sampler:
    def draw(self, domain: Any, spec: Any, rng: random.Random) -> Any:
        raise NotImplementedError

    def __str__(self) -> str:
        return type(self).__name__


class Uniform(Sampler):
    def draw(self, domain: Any, spec: Any, rng: random.Random) -> Any:
        if isinstance(domain, Categorical):
            return rng.choice(domain.categories)
        if isinstance(domain, Integer):
            return rng.randrange(domain.lower, domain.upper)
        return rng.uniform(domain.lower, domain.upper)


class LogUniform(Sampler):
    def __init__(self, base: float = 10) -> None:
        if base <= 0 or base == 1:
            raise ValueError(f"loguniform base must be > 0 and != 1, got {base}")
        self.base = base

    def draw(self, domain: Any, spec: Any, rng: random.Random) -> Any:
        lo, hi = math.log(domain.lower, self.base), math.log(domain.upper, self.base)
        value = self.base ** rng.uniform(lo, hi)
        if isinstance(domain, Integer):
            return min(max(int(value), domain.lower), domain.upper - 1)
        return min(max(value, domain.lower), domain.upper)

    def __str__(self) -> str:
        return f"LogUniform(base={self.base})"


class Normal(Sampler):
    def __init__(self, mean: float = 0.0, sd: float = 1.0) -> None:
        if sd <= 0:
            raise ValueError(f"randn: sd must be > 0, got {sd}")
        self.mean, self.sd = mean, sd

    def draw(self, domain: Any, spec: Any, rng: random.Random) -> Any:
        value = rng.gauss(self.mean, self.sd)
        if domain.lower is not None:
            value = max(value, domain.lower)
        if domain.upper is not None:
            value = min(value, domain.upper)
        return value


class Quantized(Sampler):
    def __init__(self, sampler: Sampler, q: float) -> None:
        if q <= 0:
            raise ValueError(f"quantization q must be > 0, got {q}")
        self.sampler, self.q = sampler, q

    def draw(self, domain: Any, spec: Any, rng: random.Random) -> Any:
        value = self.sampler.draw(domain, spec, rng)
        quantized = round(value / self.q) * self.q
        if isinstance(domain, Integer):
            return int(quantized)
        # keep the float tidy (0.1 * 3 -> 0.3, not 0.30000000000000004)
        decimals = max(0, -math.floor(math.log10(self.q))) + 6 if self.q < 1 else 6
        return round(quantized, decimals)

    def __str__(self) -> str:
        return f"Quantized({self.sampler}, q={self.q})"


class _Callable(Sampler):
    def draw(self, domain: Any, spec: Any, rng: random.Random) -> Any:
        fn = domain.func
        try:
            return fn(spec)
        except TypeError as exc:
            if "positional argument" in str(exc):
                return fn()
            raise


class Float(Domain):
    default_sampler_cls = Uniform

    def __init__(self, lower: float | None, upper: float | None) -> None:
        self.lower = float(lower) if lower is not None else None
        self.upper = float(upper) if upper is not None else None

    def uniform(self) -> Float:
        if self.lower is None or self.upper is None or not self.lower < self.upper:
            raise ValueError(f"uniform needs lower < upper, got [{self.lower}, {self.upper}]")
        return self.set_sampler(Uniform())

    def loguniform(self, base: float = 10) -> Float:
        if self.lower is None or self.upper is None or not 0 < self.lower < self.upper:
            raise ValueError(f"loguniform needs 0 < lower < upper, got [{self.lower}, {self.upper}]")
        return self.set_sampler(LogUniform(base))

    def normal(self, mean: float = 0.0, sd: float = 1.0) -> Float:
        return self.set_sampler(Normal(mean, sd))

    def quantized(self, q: float) -> Float:
        return self.set_sampler(Quantized(self.get_sampler(), q), allow_override=True)

    def is_valid(self, value: Any) -> bool:
        return (self.lower is None or value >= self.lower) and (self.upper is None or value <= self.upper)

    @property
    def domain_str(self) -> str:
        return f"({self.lower}, {self.upper})"


class Integer(Domain):
    default_sampler_cls = Uniform

    def __init__(self, lower: int, upper: int) -> None:
        self.lower, self.upper = int(lower), int(upper)
        if not self.lower < self.upper:
            raise ValueError(f"an integer range needs lower < upper, got [{lower}, {upper})")

    def uniform(self) -> Integer:
        return self.set_sampler(Uniform())

    def loguniform(self, base: float = 10) -> Integer:
        if self.lower <= 0:
            raise ValueError(f"lograndint needs lower > 0, got {self.lower}")
        return self.set_sampler(LogUniform(base))

    def quantized(self, q: int) -> Integer:
        return self.set_sampler(Quantized(self.get_sampler(), q), allow_override=True)

    def is_valid(self, value: Any) -> bool:
        return self.lower <= value < self.upper

    @property
    def domain_str(self) -> str:
        return f"({self.lower}, {self.upper})"


class Categorical(Domain):
    default_sampler_cls = Uniform

    def __init__(self, categories: Sequence[Any]) -> None:
        if isinstance(categories, (str, bytes)) or not isinstance(categories, Sequence) or not categories:
            raise ValueError(f"choice needs a non-empty list of categories, got {categories!r}")
        self.categories = list(categories)

    def uniform(self) -> Categorical:
        return self.set_sampler(Uniform())

    def grid(self) -> Categorical:
        self._grid = True
        return self

    def is_grid(self) -> bool:
        return getattr(self, "_grid", False)

    def is_valid(self, value: Any) -> bool:
        return value in self.categories

    def __len__(self) -> int:
        return len(self.categories)

    def __getitem__(self, i: int) -> Any:
        return self.categories[i]

    @property
    def domain_str(self) -> str:
        return f"{self.categories}"


class Function(Domain):
    """A value computed from the rest of the config: ``func(spec)`` with ``spec.config``."""

    default_sampler_cls = _Callable

    def __init__(self, func: Callable[..., Any]) -> None:
        if not callable(func):
            raise TypeError(f"sample_from needs a callable, got {type(func).__name__}")
        self.func = func

    def is_function(self) -> bool:
        return True

    @property
    def domain_str(self) -> str:
        return f"{getattr(self.func, '__name__', self.func)}()"


def uniform(lower: float, upper: float) -> Float:
    return Float(lower, upper).uniform()


def quniform(lower: float, upper: float, q: float) -> Float:
    return Float(lower, upper).uniform().quantized(q)


def loguniform(lower: float, upper: float, base: float = 10) -> Float:
    return Float(lower, upper).loguniform(base)


def qloguniform(lower: float, upper: float, q: float, base: float = 10) -> Float:
    return Float(lower, upper).loguniform(base).quantized(q)


def choice(categories: Sequence[Any]) -> Categorical:
    return Categorical(categories).uniform()


def randint(lower: int, upper: int) -> Integer:
    """An int in [lower, upper)."""
    return Integer(lower, upper).uniform()


def lograndint(lower: int, upper: int, base: float = 10) -> Integer:
    """An int in [lower, upper), log-uniformly."""
    return Integer(lower, upper).loguniform(base)


def qrandint(lower: int, upper: int, q: int = 1) -> Integer:
    """A multiple of ``q`` in [lower, upper] (upper included, as Ray)."""
    return Integer(lower, upper + 1).uniform().quantized(q)


def qlograndint(lower: int, upper: int, q: int, base: float = 10) -> Integer:
    return Integer(lower, upper + 1).loguniform(base).quantized(q)


def randn(mean: float = 0.0, sd: float = 1.0) -> Float:
    return Float(None, None).normal(mean, sd)


def qrandn(mean: float, sd: float, q: float) -> Float:
    return Float(None, None).normal(mean, sd).quantized(q)


def sample_from(func: Callable[..., Any]) -> Function:
    return Function(func)


def grid_search(values: Sequence[Any]) -> dict[str, list[Any]]:
    """Try every value (each grid point once per ``num_samples``)."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise TypeError(f"grid_search needs a list of values, got {values!r}")
    values = list(values)
    if not values:
        raise ValueError("grid_search needs at least one value")
    return {"grid_search": values}


__all__ = ["choice", "grid_search", "lograndint", "loguniform", "qlograndint", "qloguniform", "qrandint", "qrandn",
           "quniform", "randint", "randn", "sample_from", "uniform"]
"""The search-space functions: ``tray.tune`` and ``tray.tune.search`` re-export exactly these."""
