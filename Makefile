# Thin aliases over the npm scripts (the npm scripts run on the pinned Node 24).
.PHONY: build test unit e2e dev certs bench manifests image controlplane lint-image clean

build:
	npm run build

test:
	npm test

unit:
	npm run build && npm run test:unit

e2e:
	npm run build && npm run test:e2e

dev:
	npm run dev

controlplane:
	npm run controlplane

# A development CA and serving certificate for 127.0.0.1/localhost in certs/ (git-ignored).
certs:
	npx node src/certs/write-dev.ts

bench:
	npm run bench

# Renders the install manifests (what `kubectl apply -k manifests/base` applies).
manifests:
	@kubectl kustomize manifests/base

# Daemonless (buildah) on a local Node 24 + Debian base: bin/images/komputer-connector-webhook.oci.tar
# (localhost/komputer-connector-webhook:dev). With Docker: docker build -t komputer-connector-webhook:dev .
image:
	npm run image

clean:
	rm -rf dist
