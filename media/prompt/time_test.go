package prompt

import (
	"slices"
	"testing"
	"time"
)

func TestTime(t *testing.T) {
	// A set whose every clip is one sample holding its own index, so the
	// clips can be told back into names.
	names := append(slices.Clone(weekdays[:]), Noon, Midnight)
	names = append(names, english.words...)
	s := &Set{lang: "en", clips: map[string][]int16{}}
	for i, n := range names {
		s.clips[n] = []int16{int16(i)}
	}
	say := func(clips [][]int16) []string {
		var out []string
		for _, c := range clips {
			out = append(out, names[c[0]])
		}
		return out
	}
	for _, tt := range []struct {
		day          time.Weekday
		hour, minute int
		want         []string
	}{
		{time.Tuesday, 19, 30, []string{"tuesday", "at", "n7", "n30", "pm"}},
		{time.Tuesday, 19, 0, []string{"tuesday", "at", "n7", "pm"}},
		{time.Tuesday, 19, 5, []string{"tuesday", "at", "n7", "oh", "n5", "pm"}},
		{time.Saturday, 23, 45, []string{"saturday", "at", "n11", "n40", "n5", "pm"}},
		{time.Thursday, 12, 0, []string{"thursday", "at", "noon"}},
		{time.Thursday, 12, 30, []string{"thursday", "at", "n12", "n30", "pm"}},
		{time.Sunday, 9, 15, []string{"sunday", "at", "n9", "n15", "am"}},
		{time.Tuesday, 0, 0, []string{"monday", "at", "midnight"}},
		{time.Sunday, 0, 0, []string{"saturday", "at", "midnight"}},
		{time.Wednesday, 0, 10, []string{"wednesday", "at", "n12", "n10", "am"}},
		{time.Friday, 1, 1, []string{"friday", "at", "n1", "oh", "n1", "am"}},
		{time.Friday, 24, 0, nil},
		{time.Weekday(7), 10, 0, nil},
		{time.Friday, 10, 60, nil},
	} {
		if got := say(s.Time(tt.day, tt.hour, tt.minute)); !slices.Equal(got, tt.want) {
			t.Errorf("Time(%v, %d, %d) = %v, want %v", tt.day, tt.hour, tt.minute, got, tt.want)
		}
	}
	// The built-in set has every word.
	b, err := Builtin("en")
	if err != nil {
		t.Fatal(err)
	}
	for day := time.Sunday; day <= time.Saturday; day++ {
		for _, hm := range [][2]int{{0, 0}, {12, 0}, {19, 5}, {23, 59}} {
			want := 5
			if hm[0]%12 == 0 && hm[1] == 0 {
				want = 3
			}
			if hm == [2]int{19, 5} {
				want = 6
			}
			if hm == [2]int{23, 59} {
				want = 6
			}
			if got := len(b.Time(day, hm[0], hm[1])); got != want {
				t.Errorf("built-in Time(%v, %d, %d): %d clips, want %d", day, hm[0], hm[1], got, want)
			}
		}
	}
}
