"""The API's OpenAPI 3.1 document, built from the same registries the queries are compiled
from (metrics, dimensions, operators, export tables and formats), served at
``/api/openapi.json``: what it lists is what the server answers."""

from __future__ import annotations

from typing import Any

from analytics_platform.api.v2 import DATE_RANGES, INCLUDE, MAX_LIMIT, MAX_OFFSET
from analytics_platform.query.export import FORMATS, TABLES
from analytics_platform.query.stats import (
    BEHAVIOURAL,
    DIMENSIONS,
    LOGICAL,
    METRICS,
    OPERATORS,
    PROPS_PREFIX,
)

ERROR = {"type": "object", "required": ["error"],
         "properties": {"error": {"type": "string"}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "The request cannot be answered (Plausible's error shape).",
            401: "No valid API key (Authorization: Bearer …).",
            429: "The key's rate limit is used up; Retry-After says for how long.",
            503: "The warehouse has no data yet."}
    return {str(c): {"description": text[c], "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}} for c in codes}


def document(version: str = "1") -> dict[str, Any]:
    metric_names = list(METRICS)
    dims = [*DIMENSIONS, f"{PROPS_PREFIX}<key>"]
    simple = {"type": "array", "minItems": 3, "maxItems": 4, "description":
              "[operator, dimension, [values…], {case_sensitive}?] (the modifier not on "
              "matches / matches_not: RE2 patterns, (?i) for any case); operators: "
              + ", ".join(OPERATORS) + "; dimensions: " + ", ".join(
                  d for d in dims if not d.startswith("time:")),
              "prefixItems": [{"enum": list(OPERATORS)}, {"type": "string"},
                              {"type": "array", "items": {"type": "string"}, "minItems": 1},
                              {"type": "object", "properties": {
                                  "case_sensitive": {"type": "boolean"}},
                               "additionalProperties": False}]}
    logical = {"type": "array", "description": "[and|or, [filters…]], [not, filter], "
               "[has_done|has_not_done, event filter]",
               "prefixItems": [{"enum": [*LOGICAL, *BEHAVIOURAL]}]}
    query = {
        "type": "object", "additionalProperties": False,
        "required": ["site_id", "metrics", "date_range"],
        "properties": {
            "site_id": {"type": "string", "description": "Echoed; one site per warehouse."},
            "metrics": {"type": "array", "minItems": 1, "items": {"enum": metric_names},
                        "description": "; ".join(f"{m.name}: {m.description}"
                                                 for m in METRICS.values())},
            "date_range": {"oneOf": [
                {"type": "string", "pattern": r"^(day|24h|month|year|all|[0-9]+d|[0-9]+mo)$"},
                {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}],
                "description": "One of: " + ", ".join(DATE_RANGES) + ". Days are UTC."},
            "dimensions": {"type": "array", "items": {"type": "string"}, "description":
                           "time (hour up to 48 hours, day up to 40 days, week up to 52 "
                           "weeks, month beyond, as Plausible), " + ", ".join(
                               f"{d.name}" for d in DIMENSIONS.values())
                           + f", {PROPS_PREFIX}<key>"},
            "filters": {"type": "array", "items": {"oneOf": [simple, logical]}},
            "order_by": {"type": "array", "items": {
                "type": "array", "prefixItems": [{"type": "string"},
                                                 {"enum": ["asc", "desc"]}]}},
            "include": {"type": "object", "additionalProperties": False, "properties": {
                k: {"type": "boolean"} for k in sorted(INCLUDE)}},
            "pagination": {"type": "object", "additionalProperties": False, "properties": {
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                          "default": MAX_LIMIT},
                "offset": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET,
                           "default": 0}}},
        }}
    result = {"type": "object", "required": ["results", "meta", "query"], "properties": {
        "results": {"type": "array", "items": {"type": "object",
                                               "required": ["metrics", "dimensions"],
                                               "properties": {
                                                   "metrics": {"type": "array", "items": {
                                                       "type": "number"}},
                                                   "dimensions": {"type": "array", "items": {
                                                       "type": ["string", "null"]}}}}},
        "meta": {"type": "object", "properties": {
            "total_rows": {"type": "integer"},
            "time_labels": {"type": "array", "items": {"type": "string"}},
            "imports_included": {"type": "boolean"}}},
        "query": {"type": "object"}}}
    bearer = [{"apiKey": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "analytics-platform API", "version": version, "description":
                 "Plausible's Stats API v2 on this warehouse, and exports. Read-only. "
                 "docs/API.md says what is supported and what counts differently."},
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description":
                                           "A key from `analytics-platform api-key create`."}},
            "schemas": {"Error": ERROR, "Query": query, "QueryResult": result}},
        "paths": {
            "/api/v2/query": {"post": {
                "summary": "Metrics over a date range, grouped by dimensions, filtered",
                "security": bearer,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Query"}}}},
                "responses": {"200": {"description": "Rows", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/QueryResult"}}}},
                    **_errors(400, 401, 429, 503)}}},
            "/api/v1/export": {"get": {
                "summary": "A table of the warehouse (the days from…to), streamed",
                "security": bearer,
                "parameters": [
                    {"name": "table", "in": "query", "required": True,
                     "schema": {"enum": list(TABLES)}},
                    {"name": "from", "in": "query", "schema": {"type": "string",
                                                              "format": "date"}},
                    {"name": "to", "in": "query", "schema": {"type": "string",
                                                            "format": "date"}},
                    {"name": "format", "in": "query",
                     "schema": {"enum": list(FORMATS), "default": "csv"}}],
                "responses": {"200": {"description": "The file", "content": {
                    v[1].split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
                    for v in FORMATS.values()}}, **_errors(400, 401, 429, 503)}}},
            "/api/openapi.json": {"get": {"summary": "This document", "responses": {
                "200": {"description": "OpenAPI 3.1"}}}},
            "/healthz": {"get": {"summary": "ok, and whether the warehouse has data",
                                 "responses": {"200": {"description": "ok"}}}},
        },
    }
