"""The sub-commands that start from the authors' models and data: pretrained, import, datasets, serve."""

from __future__ import annotations

import argparse

from .dataset_zoo import add_datasets_parser
from .download import DownloadError
from .import_run import add_import_parser
from .pretrained import add_pretrained_parser
from .serve import ServeError, add_serve_parser

AUTHORS_ERRORS = (DownloadError, ServeError)


def add_authors_parsers(subparsers: argparse._SubParsersAction) -> None:
    add_pretrained_parser(subparsers)
    add_import_parser(subparsers)
    add_datasets_parser(subparsers)
    add_serve_parser(subparsers)
