"""The demo's data: a small Papermerge-shaped media root and a SQLite database with
Papermerge's tables (users, nodes, documents, document_versions, pages)."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE users (
    id TEXT PRIMARY KEY, username VARCHAR(150) UNIQUE NOT NULL, email VARCHAR(254) UNIQUE,
    password VARCHAR(255), first_name TEXT, last_name TEXT, is_superuser BOOLEAN NOT NULL,
    is_staff BOOLEAN NOT NULL, is_active BOOLEAN NOT NULL, created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL, date_joined TIMESTAMP NOT NULL
);
CREATE TABLE nodes (
    id TEXT PRIMARY KEY, title VARCHAR(200) NOT NULL, ctype VARCHAR(8) NOT NULL,
    lang VARCHAR(8) NOT NULL, parent_id TEXT REFERENCES nodes(id),
    created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id), updated_by TEXT NOT NULL REFERENCES users(id),
    deleted_at TIMESTAMP, deleted_by TEXT, archived_at TIMESTAMP, archived_by TEXT
);
CREATE TABLE documents (
    node_id TEXT PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE, ocr BOOLEAN NOT NULL,
    ocr_status VARCHAR NOT NULL, document_type_id TEXT,
    preview_status TEXT CHECK (preview_status IN ('ready', 'pending', 'failed')),
    preview_error VARCHAR,
    processing_status TEXT NOT NULL DEFAULT 'uploaded' CHECK (processing_status IN
        ('uploaded', 'converting', 'processing_pages', 'ready', 'failed')),
    processing_error VARCHAR
);
CREATE TABLE document_versions (
    id TEXT PRIMARY KEY, number INTEGER NOT NULL, file_name VARCHAR,
    document_id TEXT NOT NULL REFERENCES documents(node_id) ON DELETE CASCADE,
    lang VARCHAR NOT NULL, text VARCHAR, size INTEGER NOT NULL, page_count INTEGER NOT NULL,
    short_description VARCHAR, checksum VARCHAR, checksum_algorithm VARCHAR,
    created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL, created_by TEXT NOT NULL,
    updated_by TEXT NOT NULL, mime_type VARCHAR NOT NULL, is_original BOOLEAN NOT NULL DEFAULT 0,
    source_version_id TEXT REFERENCES document_versions(id),
    creation_reason VARCHAR NOT NULL DEFAULT 'upload'
);
CREATE TABLE pages (
    id TEXT PRIMARY KEY, number INTEGER NOT NULL, page_count INTEGER NOT NULL,
    lang VARCHAR NOT NULL, text VARCHAR,
    document_version_id TEXT NOT NULL REFERENCES document_versions(id) ON DELETE CASCADE
);
"""

#: (title, pages, kind): three PDFs and one scanned image that Papermerge converts to PDF.
DOCUMENTS = [
    ("Invoice 2024-017", 2, "pdf"),
    ("Rental contract", 3, "pdf"),
    ("Meeting notes", 1, "pdf"),
    ("Scanned receipt", 1, "jpeg"),
]


@dataclass
class DemoVersion:
    id: str
    number: int
    file_name: str
    key: str
    mime_type: str
    pages: list[str] = field(default_factory=list)


@dataclass
class DemoDocument:
    id: str
    title: str
    versions: list[DemoVersion] = field(default_factory=list)

    @property
    def last(self) -> DemoVersion:
        return self.versions[-1]


def _page_image(title: str, number: int, pages: int) -> object:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(image)
    big = ImageFont.load_default(size=72)
    small = ImageFont.load_default(size=36)
    draw.rectangle((80, 80, 1160, 260), outline="navy", width=6)
    draw.text((120, 130), title, fill="navy", font=big)
    for line in range(18):
        y = 360 + line * 70
        draw.text(
            (120, y),
            f"Line {line + 1}: s3w demo document, page {number} of {pages}",
            fill="black",
            font=small,
        )
    draw.text((1000, 1650), f"{number}/{pages}", fill="gray", font=small)
    return image


def write_pdf(path: Path, title: str, pages: int) -> None:
    """A real multi-page PDF (one rendered image per page), as a scanner would produce."""
    images = [_page_image(title, n, pages) for n in range(1, pages + 1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    first = images[0]
    first.save(path, "PDF", resolution=150, save_all=True, append_images=images[1:])  # type: ignore[attr-defined]


def write_jpeg(path: Path, title: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _page_image(title, 1, 1).save(path, "JPEG", quality=80)  # type: ignore[attr-defined]


def _row_id(value: str) -> str:
    """An id as SQLAlchemy's ``Uuid`` stores it on SQLite (32 hex digits), so the worker's
    models find the rows; keys and paths use the usual dashed form."""
    return uuid.UUID(value).hex


def build(media_root: Path, database: Path) -> list[DemoDocument]:
    """Write the media files and the database rows; return what was created."""
    from s3w_storage.keys import docver_key, ocr_key
    from s3w_thumbs import image_to_pdf, page_count

    now = datetime.now(UTC).isoformat()
    user = str(uuid.uuid4())
    db = sqlite3.connect(database)
    db.executescript(SCHEMA)
    db.execute(
        "INSERT INTO users VALUES (?, 'demo', 'demo@example.com', '!', 'Demo', 'User', 1, 1, 1,"
        " ?, ?, ?)",
        (_row_id(user), now, now, now),
    )
    documents: list[DemoDocument] = []
    for title, pages, kind in DOCUMENTS:
        doc = DemoDocument(str(uuid.uuid4()), title)
        db.execute(
            "INSERT INTO nodes (id, title, ctype, lang, created_at, updated_at, created_by,"
            " updated_by) VALUES (?, ?, 'document', 'eng', ?, ?, ?, ?)",
            (_row_id(doc.id), title, now, now, _row_id(user), _row_id(user)),
        )
        db.execute(
            "INSERT INTO documents (node_id, ocr, ocr_status, processing_status)"
            " VALUES (?, 0, 'unknown', 'ready')",
            (_row_id(doc.id),),
        )
        first_id = str(uuid.uuid4())
        if kind == "pdf":
            name = f"{title.lower().replace(' ', '-')}.pdf"
            first = DemoVersion(first_id, 1, name, docver_key(first_id, name), "application/pdf")
            write_pdf(media_root / first.key, title, pages)
            doc.versions.append(first)
        else:
            name = f"{title.lower().replace(' ', '-')}.jpg"
            first = DemoVersion(first_id, 1, name, docver_key(first_id, name), "image/jpeg")
            write_jpeg(media_root / first.key, title)
            converted_id = str(uuid.uuid4())
            pdf_name = name + ".pdf"
            converted = DemoVersion(
                converted_id, 2, pdf_name, docver_key(converted_id, pdf_name), "application/pdf"
            )
            (media_root / converted.key).parent.mkdir(parents=True, exist_ok=True)
            image_to_pdf(media_root / first.key, media_root / converted.key)
            doc.versions += [first, converted]
        for version in doc.versions:
            path = media_root / version.key
            count = page_count(path)
            version.pages = [str(uuid.uuid4()) for _ in range(count)]
            db.execute(
                "INSERT INTO document_versions (id, number, file_name, document_id, lang, size,"
                " page_count, created_at, updated_at, created_by, updated_by, mime_type,"
                " is_original, source_version_id, creation_reason, short_description)"
                " VALUES (?, ?, ?, ?, 'eng', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _row_id(version.id),
                    version.number,
                    version.file_name,
                    _row_id(doc.id),
                    path.stat().st_size,
                    count,
                    now,
                    now,
                    _row_id(user),
                    _row_id(user),
                    version.mime_type,
                    version.number == 1,
                    _row_id(first_id) if version.number > 1 else None,
                    "conversion" if version.number > 1 else "upload",
                    "jpeg -> pdf" if version.number > 1 else None,
                ),
            )
            for number, page_id in enumerate(version.pages, start=1):
                db.execute(
                    "INSERT INTO pages VALUES (?, ?, ?, 'eng', ?, ?)",
                    (
                        _row_id(page_id),
                        number,
                        count,
                        f"{title} page {number}",
                        _row_id(version.id),
                    ),
                )
                text_path = media_root / ocr_key(page_id, "page.txt")
                text_path.parent.mkdir(parents=True, exist_ok=True)
                text_path.write_text(f"{title}\npage {number} of {count}\n")
        documents.append(doc)
    db.commit()
    db.close()
    return documents
