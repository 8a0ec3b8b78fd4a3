package relay

import (
	"bytes"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/groupbridge/groupbridge/internal/cluster"
	"github.com/groupbridge/groupbridge/media/rtpio"
)

// TestLegKeys: the keys both ends of a leg build from the Signer's are
// valid AEAD_AES_128_GCM keys for rtpio (cluster cannot check its key
// length against rtpio's itself), crossed, and never AES-CM, which SDES
// callers keep.
func TestLegKeys(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled: LegKeys needs no Redis
	defer rdb.Close()
	s, err := cluster.NewSigner("0123456789abcdef0123456789abcdef", rdb, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cluster.SRTPKeyLen != rtpio.SRTPAEADAES128GCM.KeyLen() {
		t.Fatalf("cluster.SRTPKeyLen %d, rtpio's GCM keys are %d bytes", cluster.SRTPKeyLen, rtpio.SRTPAEADAES128GCM.KeyLen())
	}
	dialler, answerer := s.LegKeys([16]byte{7})
	dial, answer := legKeys(dialler, answerer), legKeys(answerer, dialler)
	for _, k := range []*rtpio.SRTPKeys{dial, answer} {
		if k.Profile != rtpio.SRTPAEADAES128GCM {
			t.Errorf("leg keys of profile %v, want AEAD_AES_128_GCM", k.Profile)
		}
		if err := k.Validate(); err != nil {
			t.Errorf("leg keys refused: %v", err)
		}
	}
	if !bytes.Equal(dial.Local, answer.Remote) || !bytes.Equal(dial.Remote, answer.Local) || bytes.Equal(dial.Local, dial.Remote) {
		t.Error("the two ends' keys are not two distinct keys, crossed")
	}
}
