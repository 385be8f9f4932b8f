-- sql/schema.sql - the tables mxgate reads, as postfixadmin creates them.
--
-- Column names, types and collations are those of a postfixadmin 3.3/4.x
-- MySQL/MariaDB database after all its upgrade steps (public/upgrade.php):
-- the address columns are VARCHAR(255) in latin1 with latin1_general_ci,
-- which is case-insensitive and ignores trailing spaces.  mxgate compares
-- every row it gets back with the key it looked up, byte for byte, so those
-- collations cannot make 'Bob@example.org' or 'bob@example.org ' read the
-- row of 'bob@example.org' (see sql/README.md).
--
-- With an existing postfixadmin database you need none of this file: point
-- mxgate at that database (sql/README.md).  This file is for a fresh
-- database, the tests and the sample data.  mxgate only ever reads these
-- tables (sql/grant.sql).
--
-- Load with:  mariadb mailserver < sql/schema.sql

CREATE TABLE IF NOT EXISTS domain (
	domain		VARCHAR(255) CHARACTER SET latin1 COLLATE latin1_general_ci NOT NULL,
	description	VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL DEFAULT '',
	aliases		INT(10) NOT NULL DEFAULT 0,
	mailboxes	INT(10) NOT NULL DEFAULT 0,
	maxquota	BIGINT(20) NOT NULL DEFAULT 0,	-- MiB; postfixadmin's limit per mailbox
	quota		BIGINT(20) NOT NULL DEFAULT 0,	-- MiB; for the whole domain
	transport	VARCHAR(255) CHARACTER SET latin1 COLLATE latin1_general_ci NOT NULL DEFAULT 'virtual',
	backupmx	TINYINT(1) NOT NULL DEFAULT 0,
	created		DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
	modified	DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
	active		TINYINT(1) NOT NULL DEFAULT 1,
	password_expiry	INT DEFAULT 0,
	PRIMARY KEY (domain)
) ENGINE=InnoDB CHARACTER SET latin1 COLLATE latin1_general_ci COMMENT='Postfix Admin - Virtual Domains';

CREATE TABLE IF NOT EXISTS mailbox (
	username	VARCHAR(255) CHARACTER SET latin1 COLLATE latin1_general_ci NOT NULL,
	password	VARCHAR(255) CHARACTER SET latin1 COLLATE latin1_general_ci NOT NULL DEFAULT '',
	name		VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL DEFAULT '',
	maildir		VARCHAR(255) CHARACTER SET latin1 COLLATE latin1_general_ci NOT NULL,	-- relative to quota.maildir_root, e.g. 'example.org/bob/'
	quota		BIGINT(20) NOT NULL DEFAULT 0,	-- bytes; 0 = unlimited
	local_part	VARCHAR(255) CHARACTER SET latin1 COLLATE latin1_general_ci NOT NULL,
	domain		VARCHAR(255) CHARACTER SET latin1 COLLATE latin1_general_ci NOT NULL,
	created		DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
	modified	DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
	active		TINYINT(1) NOT NULL DEFAULT 1,
	phone		VARCHAR(30) CHARACTER SET utf8mb4 NOT NULL DEFAULT '',
	email_other	VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL DEFAULT '',
	token		VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL DEFAULT '',
	token_validity	DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
	password_expiry	DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
	totp_secret	VARCHAR(255) CHARACTER SET utf8mb4 DEFAULT NULL,
	smtp_active	TINYINT(1) NOT NULL DEFAULT 1,
	PRIMARY KEY (username),
	KEY domain (domain)
) ENGINE=InnoDB CHARACTER SET latin1 COLLATE latin1_general_ci COMMENT='Postfix Admin - Virtual Mailboxes';

CREATE TABLE IF NOT EXISTS alias (
	address		VARCHAR(255) CHARACTER SET latin1 COLLATE latin1_general_ci NOT NULL,	-- 'user@domain', or '@domain' for a catch-all
	goto		TEXT CHARACTER SET latin1 COLLATE latin1_general_ci NOT NULL,	-- comma-separated targets
	domain		VARCHAR(255) CHARACTER SET latin1 COLLATE latin1_general_ci NOT NULL,
	description	VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL DEFAULT '',
	created		DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
	modified	DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
	active		TINYINT(1) NOT NULL DEFAULT 1,
	PRIMARY KEY (address),
	KEY domain (domain)
) ENGINE=InnoDB CHARACTER SET latin1 COLLATE latin1_general_ci COMMENT='Postfix Admin - Virtual Aliases';

CREATE TABLE IF NOT EXISTS alias_domain (
	alias_domain	VARCHAR(255) CHARACTER SET latin1 COLLATE latin1_general_ci NOT NULL DEFAULT '',
	target_domain	VARCHAR(255) CHARACTER SET latin1 COLLATE latin1_general_ci NOT NULL DEFAULT '',
	description	VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL DEFAULT '',
	created		DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
	modified	DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
	active		TINYINT(1) NOT NULL DEFAULT 1,
	PRIMARY KEY (alias_domain),
	KEY active (active),
	KEY target_domain (target_domain)
) ENGINE=InnoDB CHARACTER SET latin1 COLLATE latin1_general_ci COMMENT='Postfix Admin - Domain Aliases';
