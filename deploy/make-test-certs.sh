#!/usr/bin/env bash
# Makes a test CA and certificates for a local rabia cluster with the openssl CLI.
#   make-test-certs.sh DIR N
# writes into DIR (created; existing files are replaced):
#   ca.crt, ca.key                   the cluster CA (tls-ca-cert-file)
#   replica-I.crt, replica-I.key     replica I = 1..N: subject CN "replica-I" (the id
#                                    peers check against HELLO), SAN DNS:replica-I,
#                                    DNS:localhost, IP:127.0.0.1; usable as server and
#                                    client (peer links go both ways)
#   client.crt, client.key           a client certificate (CN "client") for
#                                    tls-auth-clients = yes (redis-cli --cert/--key,
#                                    rabia-cli --cert/--key)
# Keys are EC P-256 (fast handshakes), certificates valid for 825 days.
# For tests and local clusters only: the CA key sits next to the certificates.
set -euo pipefail
dir=${1:?usage: make-test-certs.sh DIR N}
n=${2:?usage: make-test-certs.sh DIR N}
[[ $n =~ ^[0-9]+$ ]] && ((n >= 1 && n <= 255)) || { echo "make-test-certs: N must be 1..255 (got '$n')" >&2; exit 2; }
command -v openssl >/dev/null || { echo "make-test-certs: openssl not found (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$dir"
days=825
umask 077 # private keys readable by their owner only

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# CA
# (a name of its own: two test CAs with one name would be told apart only by
# their signatures, and OpenSSL's error would speak of a self-signed chain)
key "$dir/ca.key"
openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$days" -subj "/O=rabia test/CN=rabia test CA $(date -u +%Y%m%dT%H%M%S)-$RANDOM" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out "$dir/ca.crt" 2>/dev/null

# issue NAME EKU SAN
issue() {
  local name=$1 eku=$2 san=$3 ext
  key "$dir/$name.key"
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } >"$ext"
  openssl req -new -key "$dir/$name.key" -subj "/O=rabia test/CN=$name" -out "$dir/$name.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days "$days" -sha256 -extfile "$ext" -out "$dir/$name.crt" 2>/dev/null
  rm -f "$ext" "$dir/$name.csr"
}

for ((i = 1; i <= n; i++)); do
  issue "replica-$i" "serverAuth,clientAuth" "DNS:replica-$i,DNS:localhost,IP:127.0.0.1"
done
issue client "clientAuth" ""
rm -f "$dir/ca.srl"
chmod 644 "$dir"/*.crt
for ((i = 1; i <= n; i++)); do
  openssl verify -CAfile "$dir/ca.crt" "$dir/replica-$i.crt" >/dev/null
done
echo "made a test CA and certificates for replicas 1..$n and a client in $dir"
