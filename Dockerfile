# Multi-stage build: a static signoff binary on a minimal base, running as a
# non-root user, with its bbolt database on the /data volume.
#
# The image holds no config: mount yours at /etc/signoff/signoff.yaml, e.g.
#   docker run -v "$PWD/signoff.yaml:/etc/signoff/signoff.yaml:ro" -v signoff-data:/data -p 8080:8080 signoff
# Without it, signoff exits saying the file does not exist. Start from
# config.example.yaml without its dev requester: a server started without
# --dev refuses to trust dev mode's issuer (check with
# `signoff config check --config FILE`).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/signoff ./cmd/signoff \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/signoff /usr/local/bin/signoff
# The volume mount point must belong to the non-root user, or bbolt cannot create its file.
COPY --from=build --chown=65532:65532 /out/data /data
ENV SIGNOFF_STORAGE_PATH=/data/signoff.db \
    SIGNOFF_LISTEN=0.0.0.0:8080
VOLUME ["/data"]
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/signoff"]
CMD ["serve", "--config", "/etc/signoff/signoff.yaml"]
