#!/bin/sh
# BlueGate installer for Raspberry Pi OS Bookworm and Debian 12.
#
#   sudo deploy/install.sh [--role gateway|beacon|central|all]   install (default: gateway)
#   sudo deploy/install.sh --upgrade                              new code, data and config kept
#   sudo deploy/install.sh --uninstall [--purge]                  remove units (and data if --purge)
#
# Layout: code in /opt/bluegate (a virtual environment in /opt/bluegate/venv), config in
# /etc/bluegate (root:bluegate 0750, never overwritten), data in /var/lib/bluegate
# (bluegate:bluegate 0750; keys in /var/lib/bluegate/keys 0700), units in
# /etc/systemd/system, a journald size limit in /etc/systemd/journald.conf.d/.
#
# --root DIR installs into a scratch root instead of / (tests, image staging). In that
# mode, by design, nothing touches the running system: no apt-get, no useradd/chown,
# no systemctl. --pip-args passes options to pip (e.g. an offline wheelhouse:
# --pip-args "--no-index --find-links /media/usb/wheels").
set -eu

ROOT=""
ROLE="gateway"
MODE="install"
PURGE=0
ENABLE=1
PIP_ARGS=""
WHEEL=""
SRC="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    echo "options: --root DIR --role ROLE --upgrade --uninstall --purge --no-enable"
    echo "         --pip-args ARGS --source DIR --wheel FILE (install a prebuilt bluegate wheel)"
}

die() { echo "install.sh: $*" >&2; exit 1; }
log() { echo "install.sh: $*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
        --role) [ $# -ge 2 ] || die "--role needs a value"; ROLE="$2"; shift 2 ;;
        --upgrade) MODE="upgrade"; shift ;;
        --uninstall) MODE="uninstall"; shift ;;
        --purge) PURGE=1; shift ;;
        --no-enable) ENABLE=0; shift ;;
        --pip-args) [ $# -ge 2 ] || die "--pip-args needs a value"; PIP_ARGS="$2"; shift 2 ;;
        --wheel) [ $# -ge 2 ] || die "--wheel needs a file"; WHEEL="$2"; shift 2 ;;
        --source) [ $# -ge 2 ] || die "--source needs a directory"; SRC="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

case "$ROLE" in
    gateway) UNITS="bluegate-gateway" EXTRA="pi" ;;
    beacon) UNITS="bluegate-beacon" EXTRA="pi" ;;
    central) UNITS="bluegate-central" EXTRA="central" ;;
    all) UNITS="bluegate-gateway bluegate-beacon bluegate-central" EXTRA="pi,central" ;;
    *) die "--role must be gateway, beacon, central or all" ;;
esac

if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT="$(cd "$ROOT" && pwd)"
    LIVE=0
else
    LIVE=1
    [ "$(id -u)" = 0 ] || die "run as root (sudo), or use --root DIR for a scratch root"
fi

OPT="$ROOT/opt/bluegate"
VENV="$OPT/venv"
ETC="$ROOT/etc/bluegate"
DATA="$ROOT/var/lib/bluegate"
UNITDIR="$ROOT/etc/systemd/system"
JOURNALD="$ROOT/etc/systemd/journald.conf.d"
ALL_UNITS="bluegate-gateway bluegate-beacon bluegate-central"

# Debian packages: Python venv and build headers (bluepy-helper needs glib,
# systemd-python needs libsystemd), BlueZ tools for adapter resets (btmgmt,
# hciconfig), rfkill and getcap for `doctor`.
DEB_PACKAGES="python3 python3-venv python3-dev gcc pkg-config libglib2.0-dev \
libsystemd-dev bluez rfkill libcap2-bin ca-certificates"

live() { [ "$LIVE" = 1 ]; }

uninstall() {
    for unit in $ALL_UNITS; do
        if live && systemctl list-unit-files "$unit.service" >/dev/null 2>&1; then
            systemctl disable --now "$unit.service" 2>/dev/null || true
        fi
        rm -f "$UNITDIR/$unit.service"
    done
    rm -f "$JOURNALD/bluegate.conf"
    rm -rf "$OPT"
    if live; then
        systemctl daemon-reload
        systemctl try-restart systemd-journald.service || true
    fi
    if [ "$PURGE" = 1 ]; then
        rm -rf "$DATA" "$ETC"
        if live && getent passwd bluegate >/dev/null; then
            userdel bluegate || true
        fi
        log "removed units, code, data and configuration"
    else
        log "removed units and code; kept $DATA and $ETC (use --purge to remove them)"
    fi
}

install_packages() {
    if ! live; then
        log "scratch root: skipping apt-get ($DEB_PACKAGES)"
        return
    fi
    missing=""
    for p in $DEB_PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        log "installing Debian packages:$missing"
        apt-get update -qq
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
    fi
}

create_user() {
    if ! live; then
        log "scratch root: skipping useradd bluegate (groups bluetooth)"
        return
    fi
    getent group bluetooth >/dev/null || groupadd --system bluetooth
    if ! getent passwd bluegate >/dev/null; then
        useradd --system --user-group --home-dir /var/lib/bluegate --no-create-home \
            --shell /usr/sbin/nologin --comment "BlueGate daemons" bluegate
    fi
    usermod -a -G bluetooth bluegate
}

make_dirs() {
    install -d -m 0755 "$OPT" "$UNITDIR" "$JOURNALD"
    install -d -m 0750 "$ETC" "$ETC/tls" "$DATA"
    install -d -m 0700 "$DATA/keys"
    if live; then
        chown root:bluegate "$ETC" "$ETC/tls"
        chown bluegate:bluegate "$DATA" "$DATA/keys"
    fi
}

install_venv() {
    [ -f "$SRC/setup.cfg" ] || die "no BlueGate source at $SRC (use --source DIR)"
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    package="$SRC[$EXTRA]"
    if [ -n "$WHEEL" ]; then
        [ -f "$WHEEL" ] || die "no wheel at $WHEEL"
        package="$(cd "$(dirname "$WHEEL")" && pwd)/$(basename "$WHEEL")[$EXTRA]"
    fi
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check $PIP_ARGS "$package"
    if ! live; then
        # The venv was built at $ROOT/opt/...; it will run as /opt/... on the target.
        for f in "$VENV"/bin/*; do
            [ -f "$f" ] && ! [ -L "$f" ] || continue
            if head -c 2 "$f" | grep -q '#!'; then
                sed -i "1s|^#!$ROOT/opt/|#!/opt/|" "$f"
            fi
        done
        sed -i "s|$ROOT/opt/|/opt/|g" "$VENV/bin/activate" 2>/dev/null || true
    fi
    # Compile once: the service runs with ProtectSystem=strict (a read-only /opt).
    "$VENV/bin/python" -m compileall -q "$VENV/lib" >/dev/null 2>&1 || true
    if [ -f "$SRC/README.md" ]; then
        install -m 0644 "$SRC/README.md" "$OPT/README.md"
    fi
    install -d -m 0755 "$OPT/examples"
    install -m 0644 "$SRC"/config/*.yaml "$OPT/examples/"
}

install_units() {
    for unit in $UNITS; do
        install -m 0644 "$SRC/deploy/systemd/$unit.service" "$UNITDIR/$unit.service"
    done
    cat > "$JOURNALD/bluegate.conf" <<'EOF'
# Installed by BlueGate: bound the journal on an SD card. Logs are kept but capped,
# and writes are batched (SyncIntervalSec) except for errors, which sync at once.
[Journal]
SystemMaxUse=64M
SystemKeepFree=256M
SystemMaxFileSize=8M
RuntimeMaxUse=32M
MaxRetentionSec=1month
SyncIntervalSec=5m
RateLimitIntervalSec=30s
RateLimitBurst=2000
EOF
    chmod 0644 "$JOURNALD/bluegate.conf"
}

install_config() {
    # An existing configuration is never overwritten (upgrade keeps it).
    for unit in $UNITS; do
        role="${unit#bluegate-}"
        target="$ETC/$role.yaml"
        if [ -e "$target" ]; then
            log "keeping $target"
            continue
        fi
        case "$role" in
            gateway) example="shift-room.yaml" ;;
            *) example="$role.yaml" ;;
        esac
        install -m 0640 "$SRC/config/$example" "$target"
        live && chown root:bluegate "$target"
        log "wrote $target from config/$example: edit it before starting $unit"
        if [ "$role" = gateway ]; then
            log "  check it: /opt/bluegate/venv/bin/bluegate-gateway run --config /etc/bluegate/gateway.yaml --check-config"
            log "  enrol it: /opt/bluegate/venv/bin/bluegate-gateway enroll --config /etc/bluegate/gateway.yaml"
        fi
    done
}

activate() {
    if ! live; then
        log "scratch root: skipping systemctl"
        return
    fi
    systemctl daemon-reload
    systemctl try-restart systemd-journald.service || true
    case " $UNITS " in
        *" bluegate-beacon "*|*" bluegate-central "*)
            # time-sync.target only waits for a synchronised clock with this enabled.
            systemctl enable systemd-time-wait-sync.service 2>/dev/null || true ;;
    esac
    for unit in $UNITS; do
        if [ "$MODE" = "upgrade" ]; then
            systemctl try-restart "$unit.service"
        elif [ "$ENABLE" = 1 ]; then
            systemctl enable "$unit.service"
            log "enabled $unit.service (start it once the config is ready: systemctl start $unit)"
        fi
    done
}

case "$MODE" in
    uninstall) uninstall; exit 0 ;;
    upgrade)
        [ -d "$OPT" ] || die "nothing to upgrade at $OPT; install first"
        # Keep which units were installed unless a role was asked for explicitly.
        installed=""
        for unit in $ALL_UNITS; do
            [ -f "$UNITDIR/$unit.service" ] && installed="$installed $unit"
        done
        if [ -n "$installed" ]; then
            UNITS="${installed# }"
            case "$UNITS" in
                *central*) case "$UNITS" in *gateway*|*beacon*) EXTRA="pi,central" ;; *) EXTRA="central" ;; esac ;;
            esac
        fi
        ;;
esac

install_packages
create_user
make_dirs
install_venv
install_units
install_config
activate
log "$MODE done (${ROOT:-/}): units $UNITS"
