package pcm

import "testing"

func TestClamp(t *testing.T) {
	tests := []struct {
		in   int32
		want int16
	}{
		{0, 0}, {32767, 32767}, {32768, 32767}, {1 << 20, 32767},
		{-32768, -32768}, {-32769, -32768}, {-1 << 20, -32768}, {-5, -5},
	}
	for _, tc := range tests {
		if got := Clamp(tc.in); got != tc.want {
			t.Errorf("Clamp(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestGainAndEnergy(t *testing.T) {
	var f Frame
	for i := range f {
		f[i] = 1000
	}
	f.Gain(2, 1)
	if f[0] != 2000 {
		t.Fatalf("Gain(2,1): got %d, want 2000", f[0])
	}
	if e := f.Energy(); e != 4000000 {
		t.Fatalf("Energy = %d, want 4000000", e)
	}
	f.Gain(100, 1)
	if f[5] != 32767 {
		t.Fatalf("Gain saturates: got %d", f[5])
	}
	f.Silence()
	if f.Energy() != 0 {
		t.Fatal("Silence left energy")
	}
}

func TestAdd(t *testing.T) {
	var f, g Frame
	f[0], g[0] = 1000, 2000
	f[1], g[1] = 30000, 30000
	f[2], g[2] = -30000, -30000
	f.Add(&g)
	if f[0] != 3000 || f[1] != 32767 || f[2] != -32768 {
		t.Fatalf("Add: %v", f[:3])
	}
}

func TestRound(t *testing.T) {
	tests := []struct {
		in   float64
		want int16
	}{
		{0, 0}, {0.49, 0}, {0.5, 1}, {-0.5, -1}, {-0.49, 0},
		{1000.4, 1000}, {-1000.6, -1001},
		{32766.6, 32767}, {40000, 32767}, {-32768.4, -32768}, {-40000, -32768},
	}
	for _, tt := range tests {
		if got := Round(tt.in); got != tt.want {
			t.Errorf("Round(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
