"""Node labels and label selectors (Ray's ``label_selector``), as pure logic.

Labels are ``{key: value}`` strings on a node; Kubernetes' label syntax applies to keys
(an optional DNS-subdomain prefix, then ``/`` and a name) and values. Every node carries
Ray's default label ``ray.io/node-id``; keys under ``ray.io/`` are reserved for such
defaults.

A selector maps a key to a condition written as Ray writes it: ``"v"`` (the label is
``v``), ``"!v"`` (absent or not ``v``), ``"in(a,b)"`` and ``"!in(a,b)"``; an empty string
asks only that the label exist. Internally a selector is a tuple of *conditions*
``(key, op, values)`` with ``op`` one of ``in``, ``!in``, ``exists``, ``!exists`` — the
four operators of Ray's older ``NodeLabelSchedulingStrategy`` too — hashable, so a
strategy that holds selectors can key the owner's lease pools and travel in a request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "DEFAULT_PREFIX",
    "NODE_ID_LABEL",
    "Condition",
    "Selector",
    "check_fallback_strategy",
    "check_label_selector",
    "check_node_labels",
    "describe",
    "matches",
    "parse_condition",
    "parse_labels_arg",
    "parse_selector",
]

DEFAULT_PREFIX = "ray.io/"
NODE_ID_LABEL = "ray.io/node-id"

_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?"
_NAME_RE = re.compile(_NAME)
_PREFIX_RE = re.compile(rf"({_NAME})?(\.({_NAME})?)*")
_SELECTOR_RE = re.compile(rf"(!?)(?:(?:in)?\(({_NAME}(?:, ?{_NAME})*)\)|({_NAME}))")
_NAME_RULE = ("must be 63 chars or less beginning and ending with an alphanumeric character ([a-z0-9A-Z]) "
              "with dashes (-), underscores (_), dots (.), and alphanumerics between.")

Condition = tuple[str, str, tuple[str, ...]]
Selector = tuple[Condition, ...]
OPERATORS = ("in", "!in", "exists", "!exists")


def _key_error(key: Any) -> str | None:
    if not isinstance(key, str):
        return f"Invalid label key {key!r}: label keys must be str, got {type(key).__name__}."
    prefix, _, name = key.rpartition("/")
    if "/" in key and (len(prefix) > 253 or not _PREFIX_RE.fullmatch(prefix)):
        return (f"Invalid label key prefix `{prefix}`. Prefix must be a series of DNS labels separated by "
                f"dots (.), not longer than 253 characters in total.")
    if len(name) > 63 or not _NAME_RE.fullmatch(name):
        return f"Invalid label key name `{name}`. Name {_NAME_RULE}"
    return None


def check_node_labels(labels: Any, where: str = "labels") -> dict[str, str]:
    """A node's custom labels, checked: a dict of str to str in label syntax, no key under
    ``ray.io/`` (Ray's defaults). TypeError for a wrong type, ValueError for bad syntax."""
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise TypeError(f"{where} must be a dict of str label keys to str values, got {type(labels).__name__}")
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"{where}: label {key!r}: {value!r}: keys and values must be str")
        why = _key_error(key)
        if why:
            raise ValueError(f"{where}: {why}")
        if value and (len(value) > 63 or not _NAME_RE.fullmatch(value)):
            raise ValueError(f"{where}: Invalid label key value `{value}`. Value {_NAME_RULE}")
        if key.startswith(DEFAULT_PREFIX):
            raise ValueError(f"{where}: Custom label keys `{key}` cannot start with the prefix `{DEFAULT_PREFIX}`. "
                             f"This is reserved for Ray defined labels.")
    return dict(labels)


def parse_labels_arg(text: str) -> dict[str, str]:
    """``tray start --labels``, as ``ray start --labels`` takes it: ``"k1=v1,k2=v2"``, or
    (Ray's older form) a JSON object; checked as ``check_node_labels``."""
    import json

    text = text.strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if text.startswith("{"):
        return check_node_labels(json.loads(text), "--labels")
    labels = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or "=" in value:
            raise ValueError(f"--labels: {pair!r} is not a key=value pair (e.g. --labels 'zone=us-1,tier=fast')")
        labels[key.strip()] = value.strip()
    return check_node_labels(labels, "--labels")


def parse_condition(key: str, text: str) -> Condition:
    """One selector entry as a condition; ValueError in Ray's words if it is not one."""
    if text == "":
        return (key, "exists", ())
    m = _SELECTOR_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"Invalid label selector value `{text}`. The label selector value should contain optional "
                         f"operators and a label value. Supported operators are: ! and in. Value {_NAME_RULE}")
    negate, listed, single = m.group(1), m.group(2), m.group(5)
    values = tuple(sorted({v.strip() for v in listed.split(",")})) if listed is not None else (single,)
    return (key, "!in" if negate else "in", values)


def check_label_selector(selector: Any, where: str = "label_selector") -> dict[str, str]:
    """Ray's checks of a ``label_selector`` option: TypeError unless a dict of str to str,
    ValueError for a bad key or condition."""
    if not isinstance(selector, dict):
        raise TypeError(f"The type of keyword '{where}' must be (<class 'dict'>, <class 'NoneType'>), "
                        f"but received type {type(selector)}")
    for key, value in selector.items():
        why = _key_error(key)
        if why:
            raise ValueError(why)
        if not isinstance(value, str):
            raise TypeError(f"{where}[{key!r}] must be a str such as 'v', '!v', 'in(a,b)' or '!in(a,b)', "
                            f"got {type(value).__name__} {value!r}")
        parse_condition(key, value)
    return selector


def check_fallback_strategy(fallback: Any) -> list[dict[str, Any]]:
    """Ray's checks of a ``fallback_strategy`` option: a list of dicts, each with only a
    ``label_selector`` (the options Ray supports there)."""
    if not isinstance(fallback, list):
        raise TypeError(f"The type of keyword 'fallback_strategy' must be (<class 'list'>, <class 'NoneType'>), "
                        f"but received type {type(fallback)}")
    for entry in fallback:
        if not isinstance(entry, dict):
            raise ValueError("Each element in fallback_strategy must be a dictionary.")
        if not entry:
            raise ValueError("Empty dictionary found in `fallback_strategy`.")
        for option in entry:
            if option != "label_selector":
                raise ValueError(f"Unsupported option found: '{option}'. Only ['label_selector'] is currently "
                                 f"supported.")
        if entry["label_selector"]:
            if not isinstance(entry["label_selector"], dict):
                raise ValueError('The value of "label_selector" must be a dictionary.')
            check_label_selector(entry["label_selector"], "fallback_strategy label_selector")
    return fallback


def parse_selector(selector: Mapping[str, str] | None) -> Selector:
    """A checked ``label_selector`` dict as a selector (sorted, hashable)."""
    return tuple(sorted(parse_condition(k, v) for k, v in (selector or {}).items()))


def condition_matches(labels: Mapping[str, str], condition: Condition) -> bool:
    key, op, values = condition
    value = labels.get(key)
    if op == "in":
        return value is not None and value in values
    if op == "!in":
        return value is None or value not in values
    if op == "exists":
        return value is not None
    if op == "!exists":
        return value is None
    raise ValueError(f"unknown label operator {op!r}: one of {OPERATORS}")


def matches(labels: Mapping[str, str], selector: Selector) -> bool:
    """Does a node with ``labels`` satisfy every condition of ``selector``?"""
    return all(condition_matches(labels, c) for c in selector)


def describe(selector: Selector) -> str:
    """A selector as the user wrote it (Ray's syntax), for messages."""
    out = {}
    for key, op, values in selector:
        if op == "exists":
            out[key] = ""
        elif op == "!exists":
            out[key] = "!exists"
        elif len(values) == 1:
            out[key] = ("!" if op == "!in" else "") + values[0]
        else:
            out[key] = f"{'!' if op == '!in' else ''}in({','.join(values)})"
    return repr(out)
