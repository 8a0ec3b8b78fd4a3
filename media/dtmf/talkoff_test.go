package dtmf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/groupbridge/groupbridge/internal/testkit"
	"github.com/groupbridge/groupbridge/media/g711"
	"github.com/groupbridge/groupbridge/media/pcm"
)

// Talk-off: a detector that hears key presses in speech would mute and
// unmute people at random, so speech must never give a digit. The speech
// is synthesised at test time with espeak-ng in several voices, pitches
// and speeds, resampled to 8 kHz and passed through G.711 like a caller's
// audio.

// speaker is one espeak-ng rendering of a text.
type speaker struct {
	voice string
	speed int // words per minute
	pitch int // 0-99, 50 is the voice's own
	text  string
}

var (
	textEnglishNumbers = "Please write down these numbers. One, two, three, four, five, six, seven, " +
		"eight, nine, zero. Eleven, twelve, thirteen, fourteen, fifteen, sixteen, seventeen, " +
		"eighteen, nineteen, twenty. Twenty one, thirty two, forty three, fifty four, sixty five, " +
		"seventy six, eighty seven, ninety eight. One hundred and nine. Two thousand and twenty five. " +
		"My phone number is five five five, eight six seven, five three zero nine. The meeting code is " +
		"four four one nine, then the hash key. Press star six to mute, and star nine to raise your hand."
	textEnglishNames = "Good evening everyone, and welcome. Tonight we have Margaret, Jonathan, Aisha, " +
		"Bartholomew, Siobhan, Giovanni, Priya, Oluwaseun, Eleanor, Mohammed, Yuki, Francesca, Dmitri, " +
		"Beatrice, Rafael, Ingrid, Theodore and Catherine with us. Let us go around the circle. Alexander, " +
		"would you like to start? Then Sophie, then William, then Isabella, then Christopher."
	textEnglishLong = "When I first came to this group I could barely say my own name without my voice " +
		"shaking, and I sat in the corner of my kitchen with the phone pressed against my ear, listening to " +
		"strangers talk about the very things I had never dared to admit to anyone. It has been a long road " +
		"since then. There were weeks when everything seemed to be getting better, and then a single " +
		"afternoon would undo all of it, and I would find myself back at the beginning, wondering why I " +
		"had bothered at all. What kept me coming back, I think, was the simple fact that nobody here ever " +
		"told me what I should feel. You listened. You let the silence sit there when I needed it, and you " +
		"laughed with me when something absurd happened, like the time my cat walked across the keyboard in " +
		"the middle of my share. So I wanted to say thank you, all of you, for the patience and the " +
		"kindness, and for showing me that it is possible to carry something heavy and still keep walking. " +
		"Oh, really? Yes! Absolutely. Hmm, well, maybe. Ah, I see. Wow, that is wonderful news, truly."
	textGerman = "Guten Abend zusammen. Ich heiße Katharina und bin seit zwei Jahren in dieser Gruppe. " +
		"Eins, zwei, drei, vier, fünf, sechs, sieben, acht, neun, zehn, elf, zwölf, dreizehn, " +
		"siebenundzwanzig, achtundneunzig, dreihundertvierundsechzig. Manchmal ist es schwer, über die " +
		"eigenen Gefühle zu sprechen, aber hier fühle ich mich verstanden. Vielen Dank an Wolfgang, " +
		"Brigitte, Jürgen und Ursula für eure Geduld und eure Freundlichkeit in den letzten Monaten."
	textFrench = "Bonsoir à tous. Je m'appelle Émilie et je participe à ce groupe depuis trois ans. " +
		"Un, deux, trois, quatre, cinq, six, sept, huit, neuf, dix, onze, douze, vingt et un, " +
		"quatre-vingt-dix-sept, trois cent soixante-cinq. Au début, je n'osais pas parler, mais peu à peu " +
		"j'ai trouvé ma place. Merci à Jean-Baptiste, Geneviève, François et Hélène pour leur écoute."
	textSpanish = "Buenas noches a todos. Me llamo Alejandro y vengo a este grupo desde hace cuatro años. " +
		"Uno, dos, tres, cuatro, cinco, seis, siete, ocho, nueve, diez, once, doce, veintitrés, " +
		"cuarenta y ocho, novecientos noventa y nueve. Al principio no podía hablar de lo que me pasaba, " +
		"pero ahora me siento acompañado. Gracias a Guadalupe, Ignacio, Rocío y Esperanza por escucharme."
	textItalian = "Buonasera a tutti. Mi chiamo Giulia e frequento questo gruppo da cinque anni. " +
		"Uno, due, tre, quattro, cinque, sei, sette, otto, nove, dieci, ventitré, sessantotto. " +
		"Grazie a Lorenzo, Chiara, Matteo e Francesca per la loro pazienza e gentilezza."
)

// speakers spans low and high voices (espeak-ng's +f variants and pitch
// 90-99 reach a fundamental of 250-350 Hz, where a voice's partials come
// closest to the DTMF grid), slow and fast speech, and several languages.
var speakers = []speaker{
	{"en", 175, 50, textEnglishNumbers},
	{"en-us", 150, 30, textEnglishNumbers},
	{"en+f3", 190, 80, textEnglishNumbers},
	{"en+f4", 140, 99, textEnglishNumbers},
	{"en-us+m3", 200, 10, textEnglishNames},
	{"en+f2", 160, 90, textEnglishNames},
	{"en-gb-x-rp", 130, 60, textEnglishNames},
	{"en", 160, 50, textEnglishLong},
	{"en-us+f3", 175, 95, textEnglishLong},
	{"en+m1", 185, 20, textEnglishLong},
	{"de", 160, 50, textGerman},
	{"de+f3", 170, 85, textGerman},
	{"fr", 165, 55, textFrench},
	{"fr+f2", 150, 99, textFrench},
	{"es", 170, 45, textSpanish},
	{"es+f4", 185, 90, textSpanish},
	{"it+f3", 160, 75, textItalian},
}

var (
	speechOnce sync.Once
	speechPCM  []int16 // all speakers at 8 kHz, G.711 round trip, frame-padded
	speechSecs []float64
	speechErr  error
)

// speech returns the talk-off corpus, rendering it once per test binary.
// The test is skipped, with the reason, only when espeak-ng is missing
// (and fails then under make test: testkit.NeedBinary).
func speech(t testing.TB) ([]int16, []float64) {
	t.Helper()
	testkit.NeedBinary(t, "espeak-ng")
	speechOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dtmf-talkoff-")
		if err != nil {
			speechErr = fmt.Errorf("temp dir: %w", err)
			return
		}
		defer os.RemoveAll(dir)
		for i, sp := range speakers {
			x, err := render(dir, i, sp)
			if err != nil {
				speechErr = err
				return
			}
			speechSecs = append(speechSecs, float64(len(x))/pcm.SampleRate)
			speechPCM = append(speechPCM, x...)
		}
		speechPCM = g711RoundTrip(speechPCM)
	})
	if speechErr != nil {
		t.Fatal(speechErr)
	}
	return speechPCM, speechSecs
}

// render synthesises one speaker and returns 8 kHz samples padded to whole
// frames.
func render(dir string, i int, sp speaker) ([]int16, error) {
	raw := filepath.Join(dir, "s"+strconv.Itoa(i)+".wav")
	cmd := exec.Command("espeak-ng", "-v", sp.voice, "-s", strconv.Itoa(sp.speed),
		"-p", strconv.Itoa(sp.pitch), "-w", raw, sp.text)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("espeak-ng -v %s: %w: %s", sp.voice, err, out)
	}
	path := raw
	if _, err := exec.LookPath("sox"); err == nil {
		path = filepath.Join(dir, "s"+strconv.Itoa(i)+"-8k.wav")
		cmd := exec.Command("sox", raw, "-r", "8000", "-c", "1", "-b", "16", path)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("sox resample %s: %w: %s", sp.voice, err, out)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read speech: %w", err)
	}
	rate, x, err := readWAV(b)
	if err != nil {
		return nil, fmt.Errorf("speech of %s: %w", sp.voice, err)
	}
	if rate != pcm.SampleRate {
		x = resample(x, rate)
	}
	if n := len(x) % pcm.FrameSamples; n != 0 {
		x = append(x, make([]int16, pcm.FrameSamples-n)...)
	}
	return x, nil
}

// readWAV returns the sample rate and samples of a mono 16-bit PCM WAV.
// espeak-ng writes 0xFFFFFFFF as the data size when it streams, so a data
// chunk running past the end is read to the end.
func readWAV(b []byte) (rate int, samples []int16, err error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return 0, nil, errors.New("not a RIFF/WAVE file")
	}
	var fmtSeen bool
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		body := b[p+8:]
		if size >= 0 && size <= len(body) {
			body = body[:size]
		}
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return 0, nil, errors.New("short fmt chunk")
			}
			format := binary.LittleEndian.Uint16(body[0:2])
			channels := binary.LittleEndian.Uint16(body[2:4])
			bits := binary.LittleEndian.Uint16(body[14:16])
			if format != 1 || channels != 1 || bits != 16 {
				return 0, nil, fmt.Errorf("want mono 16-bit PCM, got format %d, %d channels, %d bits", format, channels, bits)
			}
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
			fmtSeen = true
		case "data":
			if !fmtSeen {
				return 0, nil, errors.New("data chunk before fmt chunk")
			}
			samples = make([]int16, len(body)/2)
			if err := binary.Read(bytes.NewReader(body[:2*len(samples)]), binary.LittleEndian, samples); err != nil {
				return 0, nil, fmt.Errorf("data chunk: %w", err)
			}
			return rate, samples, nil
		}
		p += 8 + size + size%2
	}
	return 0, nil, errors.New("no data chunk")
}

// resample converts x from rate to 8 kHz with a Hann-windowed sinc
// low-pass at 3.6 kHz: only used when sox is not installed.
func resample(x []int16, rate int) []int16 {
	const halfTaps = 32 // input samples either side
	ratio := float64(rate) / pcm.SampleRate
	cutoff := 3600.0 / float64(rate) // cycles per input sample
	n := int(float64(len(x)) / ratio)
	out := make([]int16, n)
	for i := range out {
		centre := float64(i) * ratio
		k0 := int(centre)
		var acc float64
		for k := k0 - halfTaps; k <= k0+halfTaps; k++ {
			if k < 0 || k >= len(x) {
				continue
			}
			d := float64(k) - centre
			w := 0.5 + 0.5*math.Cos(math.Pi*d/(halfTaps+1))
			s := 2 * cutoff
			if d != 0 {
				s = math.Sin(2*math.Pi*cutoff*d) / (math.Pi * d)
			}
			acc += float64(x[k]) * s * w
		}
		out[i] = pcm.Clamp(int32(math.Round(acc)))
	}
	return out
}

// g711RoundTrip passes x through μ-law, as a caller's audio arrives.
func g711RoundTrip(x []int16) []int16 {
	enc := make([]byte, len(x))
	g711.PCMU.Encode(enc, x)
	out := make([]int16, len(x))
	g711.PCMU.Decode(out, enc)
	return out
}

func TestWAVReader(t *testing.T) {
	wav := func(rate uint32, chunks ...[]byte) []byte {
		var b bytes.Buffer
		b.WriteString("RIFF\x00\x00\x00\x00WAVE")
		for _, c := range chunks {
			b.Write(c)
		}
		_ = rate
		return b.Bytes()
	}
	fmtChunk := func(format, channels, bits uint16, rate uint32) []byte {
		b := []byte("fmt \x10\x00\x00\x00")
		b = binary.LittleEndian.AppendUint16(b, format)
		b = binary.LittleEndian.AppendUint16(b, channels)
		b = binary.LittleEndian.AppendUint32(b, rate)
		b = binary.LittleEndian.AppendUint32(b, rate*2)
		b = binary.LittleEndian.AppendUint16(b, 2)
		return binary.LittleEndian.AppendUint16(b, bits)
	}
	data := func(size uint32, s ...int16) []byte {
		b := []byte("data")
		b = binary.LittleEndian.AppendUint32(b, size)
		for _, v := range s {
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		}
		return b
	}
	odd := []byte("LIST\x03\x00\x00\x00abc\x00") // odd size: padded

	tests := []struct {
		name    string
		b       []byte
		rate    int
		samples []int16
		wantErr bool
	}{
		{"plain", wav(8000, fmtChunk(1, 1, 16, 8000), data(6, 1, -2, 3)), 8000, []int16{1, -2, 3}, false},
		{"odd chunk skipped", wav(0, odd, fmtChunk(1, 1, 16, 22050), data(4, 7, 8)), 22050, []int16{7, 8}, false},
		{"streamed size", wav(0, fmtChunk(1, 1, 16, 22050), data(0xffffffff, 5, 6)), 22050, []int16{5, 6}, false},
		{"stereo", wav(0, fmtChunk(1, 2, 16, 8000), data(4, 1, 2)), 0, nil, true},
		{"8-bit", wav(0, fmtChunk(1, 1, 8, 8000), data(4, 1, 2)), 0, nil, true},
		{"float", wav(0, fmtChunk(3, 1, 16, 8000), data(4, 1, 2)), 0, nil, true},
		{"no fmt", wav(0, data(4, 1, 2)), 0, nil, true},
		{"no data", wav(0, fmtChunk(1, 1, 16, 8000)), 0, nil, true},
		{"not riff", []byte("RIFX\x00\x00\x00\x00WAVE"), 0, nil, true},
		{"empty", nil, 0, nil, true},
	}
	for _, tc := range tests {
		rate, s, err := readWAV(tc.b)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.name, err, tc.wantErr)
			continue
		}
		if rate != tc.rate || fmt.Sprint(s) != fmt.Sprint(tc.samples) {
			t.Errorf("%s: got %d Hz %v, want %d Hz %v", tc.name, rate, s, tc.rate, tc.samples)
		}
	}
}

// TestResampleFallback checks the sox-free resampler: a 1 kHz tone stays at
// its level, a 5 kHz tone (above 8 kHz's Nyquist) is filtered out rather
// than folding to 3 kHz.
func TestResampleFallback(t *testing.T) {
	const rate = 22050
	mk := func(hz float64) []int16 {
		x := make([]int16, rate/2)
		for i := range x {
			x[i] = int16(math.Round(10000 * math.Sin(2*math.Pi*hz*float64(i)/rate)))
		}
		return x
	}
	y := resample(mk(1000), rate)
	if len(y) != 4000 {
		t.Fatalf("resampled length %d, want 4000", len(y))
	}
	want := 20 * math.Log10(10000.0/32767)
	if got := toneDB(y[100:3900], 1000); math.Abs(got-want) > 0.5 {
		t.Errorf("1 kHz at %.2f dBFS after resampling, want %.2f", got, want)
	}
	if got := toneDB(resample(mk(5000), rate)[100:3900], 3000); got > toneDB(y[100:3900], 1000)-40 {
		t.Errorf("5 kHz folds to 3 kHz at %.1f dB", got)
	}
}

// TestTalkOff: minutes of speech in many voices give no digit, no frame
// flagged as a tone, and pass a Filter untouched.
func TestTalkOff(t *testing.T) {
	x, secs := speech(t)
	var total float64
	voices := map[string]bool{}
	for i, s := range secs {
		total += s
		voices[speakers[i].voice] = true
	}
	t.Logf("talk-off corpus: %.1f minutes, %d renderings, %d voices", total/60, len(secs), len(voices))
	if total < 180 {
		t.Fatalf("talk-off corpus is only %.0f s, want several minutes", total)
	}
	// One pass per level through a Filter, whose detector is watched
	// too: as rendered, and 12 dB down (a quiet caller).
	for _, gain := range []float64{1, 0.25} {
		s := make([]int16, len(x))
		for i, v := range x {
			s[i] = pcm.Clamp(int32(math.Round(float64(v) * gain)))
		}
		const delay = 2
		fl := NewFilter(delay)
		out := make([]int16, len(s))
		var digits, active, changed int
		for i := 0; i < len(s); i += pcm.FrameSamples {
			if digit, ok := fl.Process((*pcm.Frame)(s[i:i+pcm.FrameSamples]), (*pcm.Frame)(out[i:i+pcm.FrameSamples])); ok {
				digits++
				t.Errorf("gain %g: false digit %c at %.2f s (%s)", gain, digit, float64(i)/sampleRate, speakerAt(secs, i))
			}
			if fl.det.ToneActive() {
				active++
			}
			if j := i - delay*pcm.FrameSamples; j >= 0 && !equal(s[j:j+pcm.FrameSamples], out[i:i+pcm.FrameSamples]) {
				changed++
			}
		}
		if active != 0 || changed != 0 {
			t.Errorf("gain %g: %d frames of speech flagged as a key tone, %d changed by the Filter", gain, active, changed)
		}
		t.Logf("gain %g: %d false digits, %d frames flagged, %d frames changed by the Filter", gain, digits, active, changed)
	}
}

// speakerAt names the rendering that sample i belongs to.
func speakerAt(secs []float64, i int) string {
	at := float64(i) / sampleRate
	for k, s := range secs {
		if at < s {
			sp := speakers[k]
			return fmt.Sprintf("%s pitch %d speed %d, %.1f s in", sp.voice, sp.pitch, sp.speed, at)
		}
		at -= s
	}
	return "end"
}

// TestFilterSpeechWithKeys: a caller talks, presses *6 (the phone
// replacing its audio with the tones, as phones do), and talks on. The
// digits come out once each, the speech comes out unchanged and delayed,
// the tones not at all.
func TestFilterSpeechWithKeys(t *testing.T) {
	all, _ := speech(t)
	s := make([]int16, 0, 12*sampleRate)
	s = append(s, all[:12*sampleRate]...)
	keys := []struct {
		digit  byte
		at, ms int
	}{{'*', 3*sampleRate + 37, 80}, {'6', 3*sampleRate + 37 + 1200, 80}, {'#', 8*sampleRate + 101, 45}}
	x := make([]float64, len(s))
	for i, v := range s {
		x[i] = float64(v)
	}
	for _, k := range keys {
		n := k.ms * sampleRate / 1000
		clear(x[k.at : k.at+n])
		press(k.digit, k.at, k.ms).add(x)
	}
	in := quantise(x)
	for _, delay := range []int{2, 3} {
		out, digits := filterRun(delay, in)
		if digits != "*6#" {
			t.Errorf("delay %d: digits %q, want \"*6#\"", delay, digits)
		}
		// Frames away from the keys come out unchanged.
		shift := delay * pcm.FrameSamples
		for f := 0; (f+1)*pcm.FrameSamples+shift <= len(out); f++ {
			near := false
			for _, k := range keys {
				first, last := k.at/pcm.FrameSamples, (k.at+k.ms*sampleRate/1000-1)/pcm.FrameSamples
				near = near || (f >= first-1 && f <= last+1)
			}
			if !near && !equal(in[f*pcm.FrameSamples:(f+1)*pcm.FrameSamples], out[f*pcm.FrameSamples+shift:(f+1)*pcm.FrameSamples+shift]) {
				t.Errorf("delay %d: speech frame %d changed", delay, f)
			}
		}
		for _, k := range keys {
			n := k.ms * sampleRate / 1000
			fr, fc := rowCol(k.digit)
			for _, f := range []float64{fr, fc} {
				got, was := toneDB(out[k.at+shift:k.at+n+shift], f), toneDB(in[k.at:k.at+n], f)
				if got > was-30 {
					t.Errorf("delay %d: key %c: %g Hz is %.1f dBFS out, %.1f dBFS in", delay, k.digit, f, got, was)
				}
			}
		}
	}
}
