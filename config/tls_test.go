package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePair writes a self-signed certificate and its key as PEM files in
// dir, and returns the key's PEM text.
func writePair(t *testing.T, dir, certName, keyName string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, keyName), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return string(keyPEM)
}

// TestTLSAndSRTPRules checks sip.tls and rtp.srtp: the section is required
// with a tls: listener and its files must load as a pair; errors name the
// files and never hold key material.
func TestTLSAndSRTPRules(t *testing.T) {
	tmp := t.TempDir()
	keyPEM := writePair(t, tmp, "cert.pem", "key.pem")
	otherKey := writePair(t, tmp, "other.pem", "otherkey.pem")
	const tlsListen = "sip: {listen: [\"tls:127.0.0.1:5061\"]"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"tls listener with a pair", tlsListen + `, tls: {cert: $TMP/cert.pem, key: $TMP/key.pem}}`, nil},
		{"tls section without listener, files unread", `sip: {tls: {cert: /nowhere/cert.pem, key: /nowhere/key.pem}}`, nil},
		{"tls listener without section", tlsListen + "}", []string{
			"sip.tls: required by sip.listen[0] (tls): set sip.tls.cert and sip.tls.key"}},
		{"empty section", tlsListen + ", tls: {}}", []string{
			"sip.tls.cert: required: a PEM certificate file", "sip.tls.key: required: a PEM private key file"}},
		{"missing cert file", tlsListen + `, tls: {cert: $TMP/none.pem, key: $TMP/key.pem}}`, []string{
			"sip.tls.cert: open $TMP/none.pem: no such file or directory"}},
		{"missing key file", tlsListen + `, tls: {cert: $TMP/cert.pem, key: $TMP/none.pem}}`, []string{
			"sip.tls.key: open $TMP/none.pem: no such file or directory"}},
		{"key of another certificate", tlsListen + `, tls: {cert: $TMP/cert.pem, key: $TMP/otherkey.pem}}`, []string{
			`sip.tls: certificate "$TMP/cert.pem" and key "$TMP/otherkey.pem" do not load as a key pair: tls: private key does not match public key`}},
		{"files swapped", tlsListen + `, tls: {cert: $TMP/key.pem, key: $TMP/cert.pem}}`, nil}, // want filled below
		{"tcp and tls on one port", `sip: {listen: ["tcp:127.0.0.1:5061", "tls:127.0.0.1:5061"], tls: {cert: $TMP/cert.pem, key: $TMP/key.pem}}`, []string{
			`sip.listen[1]: "tls:127.0.0.1:5061" takes the TCP port of sip.listen[0]`}},
		{"udp and tls on one port", `sip: {listen: ["udp:127.0.0.1:5061", "tls:127.0.0.1:5061"], tls: {cert: $TMP/cert.pem, key: $TMP/key.pem}}`, nil},
		{"srtp off", "rtp: {srtp: off}", nil},
		{"srtp require without tls", "rtp: {srtp: require}", []string{
			"rtp.srtp: require needs a tls: listener in sip.listen: SRTP keys travel in the SDP, which is in clear over udp and tcp (rtp.srtp_over_udp: true allows it anyway, exposing the keys)"}},
		{"srtp require over udp allowed", "rtp: {srtp: require, srtp_over_udp: true}", nil},
		{"srtp require with tls", tlsListen + `, tls: {cert: $TMP/cert.pem, key: $TMP/key.pem}}` + "\nrtp: {srtp: require}", nil},
		{"srtp bad", "rtp: {srtp: sometimes}", []string{`rtp.srtp: "sometimes" must be off, offer or require`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.ReplaceAll(tt.yaml, "$TMP", tmp) + "\n" + okGroups
			c, err := Parse([]byte(in))
			if tt.name == "files swapped" {
				if err == nil || !strings.Contains(err.Error(), "do not load as a key pair") {
					t.Fatalf("swapped files: %v", err)
				}
			} else {
				want := make([]string, len(tt.want))
				for i, w := range tt.want {
					want[i] = strings.ReplaceAll(w, "$TMP", tmp)
				}
				assertErrors(t, err, want...)
			}
			if err != nil {
				// No line of either key may leak into an error.
				for _, k := range []string{keyPEM, otherKey} {
					for _, line := range strings.Split(k, "\n")[1:3] {
						if strings.Contains(err.Error(), line) {
							t.Errorf("error holds key material: %v", err)
						}
					}
				}
				return
			}
			if c.SIP.TLS != nil && len(c.SIP.Listeners()) > 0 && c.SIP.Listeners()[len(c.SIP.Listeners())-1].Transport == TransportTLS {
				cfg, err := c.SIP.TLS.Load()
				if err != nil || len(cfg.Certificates) != 1 || cfg.MinVersion != tls.VersionTLS12 {
					t.Errorf("Load = %+v, %v", cfg, err)
				}
			}
		})
	}
	if d := Default(); d.RTP.SRTP != SRTPOffer || d.SIP.TLS != nil {
		t.Errorf("defaults: rtp.srtp %q, sip.tls %v", d.RTP.SRTP, d.SIP.TLS)
	}
}

// admin.tls: both files are required when the section is there, they are
// read by the check, and loading names admin.tls's keys, not sip.tls's.
func TestAdminTLS(t *testing.T) {
	tmp := t.TempDir()
	writePair(t, tmp, "cert.pem", "key.pem")
	rows := []struct {
		name string
		yaml string
		want []string
	}{
		{"a pair", `admin: {tls: {cert: $TMP/cert.pem, key: $TMP/key.pem}}`, nil},
		{"empty section", `admin: {tls: {}}`, []string{
			"admin.tls.cert: required: a PEM certificate file", "admin.tls.key: required: a PEM private key file"}},
		{"no key", `admin: {tls: {cert: $TMP/cert.pem}}`, []string{"admin.tls.key: required: a PEM private key file"}},
		// config check reads the files, as it does sip.tls's.
		{"missing file", `admin: {tls: {cert: $TMP/cert.pem, key: $TMP/none.pem}}`, []string{"admin.tls.key: "}},
		{"not a pair", `admin: {tls: {cert: $TMP/cert.pem, key: $TMP/cert.pem}}`, []string{"admin.tls: certificate"}},
	}
	for _, row := range rows {
		_, err := Parse([]byte(strings.ReplaceAll(row.yaml, "$TMP", tmp) + "\n" + okGroups))
		if row.want == nil {
			if err != nil {
				t.Errorf("%s: %v", row.name, err)
			}
			continue
		}
		for _, w := range row.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want %q", row.name, err, w)
			}
		}
	}
	c := &TLS{Cert: filepath.Join(tmp, "cert.pem"), Key: filepath.Join(tmp, "none.pem")}
	if _, err := c.LoadAs("admin.tls"); err == nil || !strings.HasPrefix(err.Error(), "admin.tls.key: ") {
		t.Errorf("missing key: %v", err)
	}
	c.Key = filepath.Join(tmp, "key.pem")
	if cfg, err := c.LoadAs("admin.tls"); err != nil || len(cfg.Certificates) != 1 || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("pair: %v", err)
	}
}
