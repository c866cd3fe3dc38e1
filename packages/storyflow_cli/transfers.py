"""Uploads (S3 presigned POST, streamed) and downloads (a job's outputs), with progress bars."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from storyflow_cli.api_client import ApiClient, job_path
from storyflow_cli.errors import CliError

CHUNK = 1024 * 1024


class MultipartStream:
    """multipart/form-data for an S3 presigned POST, streamed: the fields, then the file (S3 wants it last).

    It has a length, so requests sends Content-Length (S3 refuses chunked POSTs) and reads it in blocks.
    """

    def __init__(self, fields: dict[str, str], path: Path, content_type: str, on_read: Any = None) -> None:
        self.boundary = uuid.uuid4().hex
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        self._parts: list[bytes | Path] = [head, path, f"\r\n--{self.boundary}--\r\n".encode()]
        self._length = len(head) + path.stat().st_size + len(self._parts[2])  # type: ignore[arg-type]
        self._on_read = on_read
        self._iter = self._blocks()
        self._buffer = b""

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def _blocks(self) -> Iterator[bytes]:
        for part in self._parts:
            if isinstance(part, bytes):
                yield part
                continue
            with part.open("rb") as handle:
                while block := handle.read(CHUNK):
                    if self._on_read:
                        self._on_read(len(block))
                    yield block

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            block = next(self._iter, None)
            if block is None:
                break
            self._buffer += block
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def __iter__(self) -> Iterator[bytes]:
        while block := self.read(CHUNK):
            yield block


def transfer_progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
    )


def upload(ticket: dict[str, Any], path: Path, console: Console) -> None:
    size = path.stat().st_size
    if size == 0:
        raise CliError(f"{path} is empty")
    if size > int(ticket["max_bytes"]):
        raise CliError(f"{path} is {size} bytes; this job accepts at most {ticket['max_bytes']}")
    content_type = ticket["fields"].get("Content-Type", "video/mp4")
    with transfer_progress(console) as progress:
        task = progress.add_task(escape(f"upload {path.name}"), total=size)
        stream = MultipartStream(ticket["fields"], path, content_type, lambda n: progress.advance(task, n))
        try:
            response = requests.post(
                ticket["url"], data=stream, headers={"Content-Type": stream.content_type}, timeout=600
            )
        except requests.RequestException as error:
            raise CliError(f"upload failed: {error}") from error
    if response.status_code >= 300:
        reason = re.search(r"<Message>(.*?)</Message>", response.text)
        raise CliError(
            f"upload refused ({response.status_code}): {reason[1] if reason else response.text[:300]}"
        )


def output_filename(name: str, url: str) -> str:
    """A safe local file name for an output: its name, with the object's extension when it has none."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "output"
    if not Path(safe).suffix:
        suffix = Path(unquote(urlsplit(url).path)).suffix
        if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix):
            safe += suffix
    return safe


def download(url: str, destination: Path, progress: Progress) -> int:
    try:
        with requests.get(url, stream=True, timeout=60) as response:
            if response.status_code >= 300:
                raise CliError(f"download of {destination.name} failed ({response.status_code})")
            total = int(response.headers.get("Content-Length") or 0) or None
            task = progress.add_task(escape(f"get {destination.name}"), total=total)
            partial = destination.with_name(destination.name + ".part")
            written = 0
            with partial.open("wb") as handle:
                for block in response.iter_content(CHUNK):
                    handle.write(block)
                    written += len(block)
                    progress.advance(task, len(block))
            partial.replace(destination)
            return written
    except requests.RequestException as error:
        raise CliError(f"download of {destination.name} failed: {error}") from error


def save_outputs(client: ApiClient, job_id: str, directory: Path, console: Console) -> list[Path]:
    """Download every output of a completed job into `directory`."""
    outputs = client.call("GET", job_path(job_id, "/outputs"))
    if not outputs["outputs"]:
        raise CliError(f"job {job_id} has no downloadable outputs")
    directory.mkdir(parents=True, exist_ok=True)
    saved = []
    with transfer_progress(console) as progress:
        for name, url in sorted(outputs["outputs"].items()):
            destination = directory / output_filename(name, url)
            download(url, destination, progress)
            saved.append(destination)
    return saved
