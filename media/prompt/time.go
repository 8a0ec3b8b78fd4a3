package prompt

import (
	"time"
)

// weekdays are the clip names of time.Weekday's days, Sunday first.
var weekdays = [7]string{Sunday, Monday, Tuesday, Wednesday, Thursday, Friday, Saturday}

// Time returns the clips that say a weekday and a time of day in s's
// language, its own way (speech.time). In every language noon is the weekday and "noon", and midnight at the start of
// a day is said as the end of the day before, as people say it: 00:00 on
// Tuesday is "Monday at midnight". Out-of-range values say nothing.
func (s *Set) Time(day time.Weekday, hour, minute int) [][]int16 {
	if day < time.Sunday || day > time.Saturday || hour < 0 || hour > 23 || minute < 0 || minute > 59 {
		return nil
	}
	sp := speechOf(s.lang)
	clips := make([][]int16, 0, 6)
	switch {
	case hour == 12 && minute == 0:
		return s.appendClip(sp.at(s, s.appendClip(clips, weekdays[day])), Noon)
	case hour == 0 && minute == 0:
		return s.appendClip(sp.at(s, s.appendClip(clips, weekdays[(day+6)%7])), Midnight)
	}
	return sp.time(s, s.appendClip(clips, weekdays[day]), hour, minute)
}

// at appends the word between a weekday and a time.
func (sp *speech) at(s *Set, dst [][]int16) [][]int16 {
	return s.appendClip(dst, sp.atWord)
}

// englishTime is set here, not in english's literal: it speaks numbers
// through Set.Number, which looks english up.
func init() {
	english.time = englishTime
	spanish.time = spanishTime
}

// englishTime says a time of day after its weekday the way American
// English does on a 12-hour clock, as Asterisk's SayUnixTime does for
// "en" (without its "o'clock" before A M or P M): "at seven P M", "at
// seven oh five P M", "at twelve thirty P M".
func englishTime(s *Set, clips [][]int16, hour, minute int) [][]int16 {
	clips = s.appendClip(clips, At)
	h12 := hour % 12
	if h12 == 0 {
		h12 = 12
	}
	clips = append(clips, s.Number(h12)...)
	switch {
	case minute == 0:
	case minute < 10:
		clips = append(s.appendClip(clips, Oh), s.Number(minute)...)
	default:
		clips = append(clips, s.Number(minute)...)
	}
	if hour < 12 {
		return s.appendClip(clips, AM)
	}
	return s.appendClip(clips, PM)
}

// Spanish words of a spoken time, only in the Spanish set.
const (
	esA         = "a"               // "a" (a mediodía, a medianoche)
	esALaUna    = "a_la_una"        // "a la una"
	esALas      = "a_las"           // "a las"
	esCuarto    = "cuarto"          // "cuarto" (y cuarto)
	esMedia     = "media"           // "media" (y media)
	esMadrugada = "de_la_madrugada" // "de la madrugada"
	esManana    = "de_la_manana"    // "de la mañana"
	esTarde     = "de_la_tarde"     // "de la tarde"
	esNoche     = "de_la_noche"     // "de la noche"
)

// spanishTime says a time of day after its weekday the way Spanish does
// on a 12-hour clock, as Asterisk's SayUnixTime does for "es": "a las
// siete y media de la tarde", "a la una y cuarto de la madrugada", "a las
// nueve y cuarenta y cinco de la mañana". The weekday's article is in
// the sentence before it ("Se reúne de nuevo el").
func spanishTime(s *Set, clips [][]int16, hour, minute int) [][]int16 {
	h12 := hour % 12
	switch h12 {
	case 0:
		h12 = 12
		fallthrough
	default:
		clips = append(s.appendClip(clips, esALas), s.Number(h12)...)
	case 1:
		clips = s.appendClip(clips, esALaUna) // una, not uno
	}
	switch minute {
	case 0:
	case 15:
		clips = s.appendClip(s.appendClip(clips, "y"), esCuarto)
	case 30:
		clips = s.appendClip(s.appendClip(clips, "y"), esMedia)
	default:
		clips = append(s.appendClip(clips, "y"), s.Number(minute)...)
	}
	switch {
	case hour < 6:
		return s.appendClip(clips, esMadrugada)
	case hour < 12:
		return s.appendClip(clips, esManana)
	case hour < 20:
		return s.appendClip(clips, esTarde)
	}
	return s.appendClip(clips, esNoche)
}
