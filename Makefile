# Thin wrappers: each target is one pyinfra (or test) command. See README.md.
# The venv is created from the pinned requirements on first use.

VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
PYINFRA := $(BIN)/pyinfra
READY   := $(VENV)/.installed
ENV     ?= dev
# A make variable as one shell word, whatever it holds (spaces, quotes, $, ;).
quote    = '$(subst ','\'',$(1))'

.DEFAULT_GOAL := help
.PHONY: help dev test test-fast preflight lint build_odoo build_postgres build_nginx build_all_images \
        deploy_dev deploy_staging deploy_production backup_db_prod fetch_backup_prod restore_db_staging \
        promote_prod_to_staging refresh_images releases rollback addons_update backup_offsite \
        backup_status offsite_prune restore_offsite drill

$(READY): requirements.txt requirements-dev.txt constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "make: dfr-deploy needs Python >= 3.11 as $(PYTHON): install it, or run make PYTHON=python3.11 ..." >&2; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "make: $(PYTHON) has no venv module: install python3-venv (Debian, Ubuntu) and run make again" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	touch $@

help: ## List the targets
	@grep -E '^[a-z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-24s %s\n", $$1, $$2}'

dev: $(READY) ## Deploy the stack on this machine (dev inventory, zero configuration)
	$(PYINFRA) -y inventories/dev.py deploy.py

test: preflight $(READY) ## Lint, unit, then integration tests (needs a Docker engine; see README)
	tests/run.sh

test-fast: preflight $(READY) ## Lint, unit and the smoke integration tests: the edit-test loop
	tests/run.sh fast

preflight: ## Say in one line each what make test needs and this machine lacks
	@PYTHON=$(PYTHON) tests/preflight.sh

lint: $(READY) ## ruff, shellcheck and hadolint only
	tests/lint.sh

deploy_dev: dev ## Same as dev

deploy_staging: $(READY) ## Deploy staging (asks before changing; try --dry --diff first)
	$(PYINFRA) inventories/staging.py deploy.py

deploy_production: $(READY) ## Deploy production (asks before changing; try --dry --diff first)
	$(PYINFRA) inventories/prod.py deploy.py

build_odoo: $(READY) ## Build the Odoo image on ENV's hosts (ENV=dev|staging|prod)
	$(PYINFRA) -y inventories/$(ENV).py tasks/build.py --data images=odoo

build_postgres: $(READY) ## Build the PostgreSQL image on ENV's hosts
	$(PYINFRA) -y inventories/$(ENV).py tasks/build.py --data images=postgres

build_nginx: $(READY) ## Build the Nginx image on ENV's hosts
	$(PYINFRA) -y inventories/$(ENV).py tasks/build.py --data images=nginx

build_all_images: $(READY) ## Build all three images on ENV's hosts
	$(PYINFRA) -y inventories/$(ENV).py tasks/build.py

releases: $(READY) ## Print ENV's release log, newest first (who deployed what, when, result)
	$(PYINFRA) -y inventories/$(ENV).py tasks/releases.py

rollback: $(READY) ## Put back ENV's previous release (RELEASE=ID for another, CONFIRM_SNAPSHOT=ID; asks first)
	$(PYINFRA) inventories/$(ENV).py tasks/rollback.py $(if $(RELEASE),--data release=$(call quote,$(RELEASE))) \
	  $(if $(CONFIRM_SNAPSHOT),--data confirm_snapshot=$(call quote,$(CONFIRM_SNAPSHOT)))

addons_update: $(READY) ## Resolve the addons repositories' refs, write addons.lock, show what changed
	$(BIN)/python -m tasks.addons_lock $(INVENTORIES)

refresh_images: $(READY) ## Pull ENV's base images again, rebuild and restart what changed (asks first)
	$(PYINFRA) inventories/$(ENV).py deploy.py --data refresh_images=true

backup_db_prod: $(READY) ## Back up production (database + filestore) into backups/prod/
	$(PYINFRA) -y inventories/prod.py tasks/backup.py

fetch_backup_prod: $(READY) ## Copy a backup production keeps (BACKUP=latest: last night's) into backups/prod/
	$(PYINFRA) -y inventories/prod.py tasks/backup.py --data fetch=$(call quote,$(or $(BACKUP),latest))

restore_db_staging: $(READY) ## Restore BACKUP_FILE=... on staging, neutralized (asks first)
	@test -n $(call quote,$(BACKUP_FILE)) || { echo "$@: give the backup, e.g. make $@ BACKUP_FILE=backups/prod/NAME.dfrbak" >&2; exit 2; }
	$(PYINFRA) inventories/staging.py tasks/restore.py --data backup_file=$(call quote,$(BACKUP_FILE))

backup_offsite: $(READY) ## Back up ENV on its host and send it to the off-host repository (as the timer does)
	$(PYINFRA) -y inventories/$(ENV).py tasks/backup.py --data offsite=true

backup_status: $(READY) ## ENV's newest backups, on the host and off-host; fails if off-host is too old
	$(PYINFRA) -y inventories/$(ENV).py tasks/backup_status.py

offsite_prune: $(READY) ## Apply the off-host retention, on the backup host with its own authority
	$(PYINFRA) -y inventories/$(ENV).py tasks/offsite_prune.py

restore_offsite: $(READY) ## Restore ENV from the off-host repository (FROM_ENV=prod: another's; SNAPSHOT=latest or NAME; asks first)
	$(PYINFRA) inventories/$(ENV).py tasks/restore.py --data from=offsite \
	  --data snapshot=$(call quote,$(or $(SNAPSHOT),latest)) $(if $(CONFIRM),--data confirm=$(call quote,$(CONFIRM))) \
	  $(if $(FROM_ENV),--data offsite_env=$(call quote,$(FROM_ENV)))

drill: $(READY) ## Restore ENV's newest off-host backup (FROM_ENV=prod: another's) into a scratch database, check it, remove it
	$(PYINFRA) -y inventories/$(ENV).py tasks/drill.py $(if $(SNAPSHOT),--data snapshot=$(call quote,$(SNAPSHOT))) \
	  $(if $(FROM_ENV),--data offsite_env=$(call quote,$(FROM_ENV)))

promote_prod_to_staging: $(READY) ## Back up production, restore it on staging, neutralized
	$(PYINFRA) -y inventories/prod.py tasks/backup.py --data backup_dir=backups/promote
	$(PYINFRA) inventories/staging.py tasks/restore.py \
	  --data backup_file=$$(ls -t backups/promote/*.dfrbak | head -n1)
