-- The Papermerge core tables s3w reads and writes, as its alembic migrations leave them
-- (head bb19aac50bca): enum types, NOT NULLs, defaults and foreign keys with their cascades.
-- Left out on purpose: the audit-log triggers, the trigger that fills created_by/updated_by
-- from current_setting('app.user_id'), and the deferred check that every user has home and
-- inbox folders. Tests insert those columns themselves.

CREATE TYPE preview_status AS ENUM ('ready', 'pending', 'failed');
CREATE TYPE document_processing_status AS ENUM (
    'uploaded', 'converting', 'processing_pages', 'ready', 'failed'
);

CREATE TABLE users (
    id uuid PRIMARY KEY,
    username varchar(150) NOT NULL UNIQUE,
    email varchar(254) NOT NULL UNIQUE,
    password varchar(255) NOT NULL,
    first_name varchar(150) NOT NULL DEFAULT '',
    last_name varchar(150) NOT NULL DEFAULT '',
    is_superuser boolean NOT NULL,
    is_staff boolean NOT NULL,
    is_active boolean NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    date_joined timestamp NOT NULL
);

CREATE TABLE nodes (
    id uuid PRIMARY KEY,
    title varchar(200) NOT NULL,
    ctype varchar(8) NOT NULL,
    lang varchar(8) NOT NULL,
    parent_id uuid REFERENCES nodes (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    created_by uuid NOT NULL REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED,
    updated_by uuid NOT NULL REFERENCES users (id) DEFERRABLE INITIALLY DEFERRED,
    deleted_at timestamptz,
    deleted_by uuid REFERENCES users (id),
    archived_at timestamptz,
    archived_by uuid REFERENCES users (id),
    CONSTRAINT nodes_ctype_check CHECK (ctype IN ('document', 'folder'))
);

CREATE TABLE documents (
    node_id uuid PRIMARY KEY REFERENCES nodes (id) ON DELETE CASCADE,
    ocr boolean NOT NULL,
    ocr_status varchar NOT NULL,
    document_type_id uuid,
    preview_status preview_status,
    preview_error varchar,
    processing_status document_processing_status NOT NULL DEFAULT 'uploaded',
    processing_error varchar
);

CREATE TABLE document_versions (
    id uuid PRIMARY KEY,
    number integer NOT NULL,
    file_name varchar,
    document_id uuid NOT NULL REFERENCES documents (node_id) ON DELETE CASCADE,
    lang varchar NOT NULL,
    text varchar,
    size integer NOT NULL,
    page_count integer NOT NULL,
    short_description varchar,
    checksum varchar,
    checksum_algorithm varchar,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    created_by uuid NOT NULL,
    updated_by uuid NOT NULL,
    mime_type varchar NOT NULL,
    is_original boolean NOT NULL DEFAULT false,
    source_version_id uuid REFERENCES document_versions (id),
    creation_reason varchar NOT NULL DEFAULT 'upload'
);

CREATE TABLE pages (
    id uuid PRIMARY KEY,
    number integer NOT NULL,
    page_count integer NOT NULL,
    lang varchar NOT NULL,
    text varchar,
    document_version_id uuid NOT NULL REFERENCES document_versions (id) ON DELETE CASCADE
);

CREATE INDEX document_versions_document_id_idx ON document_versions (document_id);
CREATE INDEX pages_document_version_id_idx ON pages (document_version_id);
