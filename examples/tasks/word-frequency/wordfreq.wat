;; word-frequency: counts the words of the compartment's first input and writes
;; one line "word count" per distinct word, sorted by count (highest first), then
;; by word (byte order).
;;
;; A word is a maximal run of ASCII letters and digits; letters are folded to lower
;; case; every other byte (space, punctuation, bytes of non-ASCII characters)
;; separates words. Words longer than 256 bytes are cut to their first 256 bytes.
;;
;; The input is streamed in 64 KiB chunks with veritee.input_read, so its size is
;; not bounded by this module's memory: memory holds only the distinct words.
;;
;; The scanning loop is written for speed (it is the benchmark of
;; crates/veritee-wasm/benches/task.rs): the word is lower-cased and hashed in one
;; pass, the byte loops are unrolled so that the runtime's fuel and interruption
;; checks (at every loop head) are paid rarely, and a short word already in the
;; table is matched inline with one 8-byte comparison.
;;
;; Memory map (one page is 64 KiB):
;;   0x00100 ..  0x00120  digits scratch for number formatting
;;   0x00200 ..  0x00300  CLASS table: byte -> lower-case word byte, or 0
;;   0x01000 ..  0x01110  the word being read (WORD_MAX = 256 bytes), a spare
;;                        byte for the bytes of overlong words, and slack for
;;                        8-byte comparisons
;;   0x10000 ..  0x20000  input chunk (64 KiB)
;;   0x20000 ..  0x30000  output buffer (64 KiB), flushed with output_write
;;   0x30000 ..           heap (bump allocated, never freed): hash tables,
;;                        copies of the distinct words, the sort array
;;
;; Hash table: open addressing, linear probing, capacity a power of two, at most
;; half full. An entry is 16 bytes: word pointer (0 = empty slot), word length,
;; FNV-1a hash, count.
(module
  (import "veritee" "self_id" (func $self_id (result i32)))
  (import "veritee" "input_read"
    (func $input_read (param i32 i32 i64 i32 i32) (result i32)))
  (import "veritee" "output_write" (func $output_write (param i32 i32) (result i32)))

  (memory (export "memory") 4)

  (global $CHUNK i32 (i32.const 0x10000))
  (global $CHUNK_LEN i32 (i32.const 0x10000))
  (global $WORD i32 (i32.const 0x1000))
  (global $WORD_MAX i32 (i32.const 256))
  (global $FNV_OFFSET i32 (i32.const 0x811c9dc5))
  (global $OUT i32 (i32.const 0x20000))
  (global $OUT_LEN i32 (i32.const 0x10000))

  (global $heap (mut i32) (i32.const 0x30000))
  (global $table (mut i32) (i32.const 0))
  (global $cap (mut i32) (i32.const 0))      ;; slots
  (global $used (mut i32) (i32.const 0))     ;; distinct words
  (global $out_pos (mut i32) (i32.const 0))  ;; bytes pending in the output buffer

  ;; CLASS: 'A'-'Z' -> 'a'-'z', 'a'-'z' and '0'-'9' -> themselves, else 0.
  (data (i32.const 0x200)
    "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00"
    "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\30\31\32\33\34\35\36\37\38\39\00\00\00\00\00\00"
    "\00\61\62\63\64\65\66\67\68\69\6a\6b\6c\6d\6e\6f\70\71\72\73\74\75\76\77\78\79\7a\00\00\00\00\00"
    "\00\61\62\63\64\65\66\67\68\69\6a\6b\6c\6d\6e\6f\70\71\72\73\74\75\76\77\78\79\7a\00\00\00\00\00")
  ;; bytes 0x80-0xff of CLASS are 0 (memory starts zeroed)

  ;; Returns 8-byte aligned, zeroed memory of $n bytes, growing memory as needed.
  ;; A refused memory.grow (the compartment's memory limit) stops the task.
  (func $alloc (param $n i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (local.set $end (i32.add (local.get $p) (local.get $n)))
    (local.set $have (i32.shl (memory.size) (i32.const 16)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow
                (i32.shr_u
                  (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 0xffff))
                  (i32.const 16)))
              (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $p))

  ;; Byte-wise comparison: -1, 0 or 1.
  (func $compare (param $a i32) (param $alen i32) (param $b i32) (param $blen i32) (result i32)
    (local $i i32) (local $n i32) (local $x i32) (local $y i32)
    (local.set $n (select (local.get $alen) (local.get $blen)
                          (i32.lt_u (local.get $alen) (local.get $blen))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $x (i32.load8_u (i32.add (local.get $a) (local.get $i))))
        (local.set $y (i32.load8_u (i32.add (local.get $b) (local.get $i))))
        (if (i32.ne (local.get $x) (local.get $y))
          (then (return (select (i32.const -1) (i32.const 1)
                                (i32.lt_u (local.get $x) (local.get $y))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (if (i32.lt_u (local.get $alen) (local.get $blen)) (then (return (i32.const -1))))
    (if (i32.gt_u (local.get $alen) (local.get $blen)) (then (return (i32.const 1))))
    (i32.const 0))

  ;; Allocates a zeroed table of $slots entries and makes it current.
  (func $new_table (param $slots i32)
    (local $bytes i32)
    (local.set $bytes (i32.shl (local.get $slots) (i32.const 4)))
    (global.set $table (call $alloc (local.get $bytes)))
    (memory.fill (global.get $table) (i32.const 0) (local.get $bytes))
    (global.set $cap (local.get $slots)))

  ;; Doubles the table, re-inserting every entry by its stored hash.
  (func $grow_table
    (local $old i32) (local $old_cap i32) (local $i i32) (local $e i32) (local $slot i32)
    (local.set $old (global.get $table))
    (local.set $old_cap (global.get $cap))
    (call $new_table (i32.shl (local.get $old_cap) (i32.const 1)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $old_cap)))
        (local.set $e (i32.add (local.get $old) (i32.shl (local.get $i) (i32.const 4))))
        (if (i32.load (local.get $e))
          (then
            (local.set $slot (i32.and (i32.load offset=8 (local.get $e))
                                      (i32.sub (global.get $cap) (i32.const 1))))
            (block $placed
              (loop $probe
                (br_if $placed
                  (i32.eqz (i32.load (i32.add (global.get $table)
                                              (i32.shl (local.get $slot) (i32.const 4))))))
                (local.set $slot (i32.and (i32.add (local.get $slot) (i32.const 1))
                                          (i32.sub (global.get $cap) (i32.const 1))))
                (br $probe)))
            (memory.copy (i32.add (global.get $table) (i32.shl (local.get $slot) (i32.const 4)))
                         (local.get $e) (i32.const 16))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))

  ;; 1 if the $len bytes at $a and $b are equal. Compares 8 bytes at a time and
  ;; may read up to 7 bytes past either end (word copies are allocated in whole
  ;; 8-byte units, and the word buffer has slack).
  (func $equal (param $a i32) (param $b i32) (param $len i32) (result i32)
    (block $tail
      (loop $words
        (br_if $tail (i32.lt_u (local.get $len) (i32.const 8)))
        (if (i64.ne (i64.load (local.get $a)) (i64.load (local.get $b)))
          (then (return (i32.const 0))))
        (local.set $a (i32.add (local.get $a) (i32.const 8)))
        (local.set $b (i32.add (local.get $b) (i32.const 8)))
        (local.set $len (i32.sub (local.get $len) (i32.const 8)))
        (br $words)))
    (if (i32.eqz (local.get $len)) (then (return (i32.const 1))))
    ;; the low $len bytes of the next 8 (little-endian)
    (i64.eqz
      (i64.and (i64.xor (i64.load (local.get $a)) (i64.load (local.get $b)))
               (i64.shr_u (i64.const -1)
                          (i64.extend_i32_u (i32.sub (i32.const 64)
                                                     (i32.shl (local.get $len) (i32.const 3))))))))

  ;; Counts one occurrence of the $len-byte word at $p, whose hash is $h.
  (func $count_word (param $p i32) (param $len i32) (param $h i32)
    (local $slot i32) (local $e i32) (local $copy i32)
    (local.set $slot (i32.and (local.get $h) (i32.sub (global.get $cap) (i32.const 1))))
    (loop $probe
      (local.set $e (i32.add (global.get $table) (i32.shl (local.get $slot) (i32.const 4))))
      ;; empty slot: a new word
      (if (i32.eqz (i32.load (local.get $e)))
        (then
          ;; whole 8-byte units, so that $equal may read them 8 at a time
          (local.set $copy (call $alloc (i32.and (i32.add (local.get $len) (i32.const 7))
                                                 (i32.const -8))))
          (memory.copy (local.get $copy) (local.get $p) (local.get $len))
          (i32.store (local.get $e) (local.get $copy))
          (i32.store offset=4 (local.get $e) (local.get $len))
          (i32.store offset=8 (local.get $e) (local.get $h))
          (i32.store offset=12 (local.get $e) (i32.const 1))
          (global.set $used (i32.add (global.get $used) (i32.const 1)))
          (if (i32.gt_u (i32.shl (global.get $used) (i32.const 1)) (global.get $cap))
            (then (call $grow_table)))
          (return)))
      ;; the same word: one more
      (if (i32.and (i32.eq (i32.load offset=8 (local.get $e)) (local.get $h))
                   (i32.eq (i32.load offset=4 (local.get $e)) (local.get $len)))
        (then
          (if (call $equal (i32.load (local.get $e)) (local.get $p) (local.get $len))
            (then
              (i32.store offset=12 (local.get $e)
                         (i32.add (i32.load offset=12 (local.get $e)) (i32.const 1)))
              (return)))))
      (local.set $slot (i32.and (i32.add (local.get $slot) (i32.const 1))
                                (i32.sub (global.get $cap) (i32.const 1))))
      (br $probe)))

  ;; Sort order: does entry $a come before entry $b? (count desc, then word asc)
  (func $before (param $a i32) (param $b i32) (result i32)
    (local $ca i32) (local $cb i32)
    (local.set $ca (i32.load offset=12 (local.get $a)))
    (local.set $cb (i32.load offset=12 (local.get $b)))
    (if (i32.ne (local.get $ca) (local.get $cb))
      (then (return (i32.gt_u (local.get $ca) (local.get $cb)))))
    (i32.lt_s (call $compare (i32.load (local.get $a)) (i32.load offset=4 (local.get $a))
                             (i32.load (local.get $b)) (i32.load offset=4 (local.get $b)))
              (i32.const 0)))

  ;; Heap sort helpers over an array of entry pointers.
  (func $swap (param $arr i32) (param $i i32) (param $j i32)
    (local $pi i32) (local $pj i32) (local $t i32)
    (local.set $pi (i32.add (local.get $arr) (i32.shl (local.get $i) (i32.const 2))))
    (local.set $pj (i32.add (local.get $arr) (i32.shl (local.get $j) (i32.const 2))))
    (local.set $t (i32.load (local.get $pi)))
    (i32.store (local.get $pi) (i32.load (local.get $pj)))
    (i32.store (local.get $pj) (local.get $t)))

  (func $at (param $arr i32) (param $i i32) (result i32)
    (i32.load (i32.add (local.get $arr) (i32.shl (local.get $i) (i32.const 2)))))

  ;; Moves element $root down a max-heap of $end elements ("max" = sorts last).
  (func $sift_down (param $arr i32) (param $root i32) (param $end i32)
    (local $child i32)
    (block $done
      (loop $next
        (local.set $child (i32.add (i32.shl (local.get $root) (i32.const 1)) (i32.const 1)))
        (br_if $done (i32.ge_u (local.get $child) (local.get $end)))
        (if (i32.lt_u (i32.add (local.get $child) (i32.const 1)) (local.get $end))
          (then
            (if (call $before (call $at (local.get $arr) (local.get $child))
                              (call $at (local.get $arr)
                                        (i32.add (local.get $child) (i32.const 1))))
              (then (local.set $child (i32.add (local.get $child) (i32.const 1)))))))
        (br_if $done (i32.eqz (call $before (call $at (local.get $arr) (local.get $root))
                                            (call $at (local.get $arr) (local.get $child)))))
        (call $swap (local.get $arr) (local.get $root) (local.get $child))
        (local.set $root (local.get $child))
        (br $next))))

  (func $sort (param $arr i32) (param $n i32)
    (local $i i32)
    (if (i32.lt_u (local.get $n) (i32.const 2)) (then (return)))
    (local.set $i (i32.shr_u (local.get $n) (i32.const 1)))
    (loop $heapify
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (call $sift_down (local.get $arr) (local.get $i) (local.get $n))
      (br_if $heapify (local.get $i)))
    (local.set $i (i32.sub (local.get $n) (i32.const 1)))
    (loop $extract
      (call $swap (local.get $arr) (i32.const 0) (local.get $i))
      (call $sift_down (local.get $arr) (i32.const 0) (local.get $i))
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $extract (local.get $i))))

  ;; Output buffering.
  (func $flush
    (if (global.get $out_pos)
      (then
        (drop (call $output_write (global.get $OUT) (global.get $out_pos)))
        (global.set $out_pos (i32.const 0)))))

  (func $emit (param $p i32) (param $len i32)
    (if (i32.gt_u (i32.add (global.get $out_pos) (local.get $len)) (global.get $OUT_LEN))
      (then (call $flush)))
    (memory.copy (i32.add (global.get $OUT) (global.get $out_pos)) (local.get $p) (local.get $len))
    (global.set $out_pos (i32.add (global.get $out_pos) (local.get $len))))

  (func $emit_byte (param $b i32)
    (i32.store8 (i32.const 0x100) (local.get $b))
    (call $emit (i32.const 0x100) (i32.const 1)))

  ;; Writes $v in decimal.
  (func $emit_u32 (param $v i32)
    (local $p i32)
    (local.set $p (i32.const 0x120))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p)
                  (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $digit (local.get $v)))
    (call $emit (local.get $p) (i32.sub (i32.const 0x120) (local.get $p))))

  (func (export "run") (result i32)
    (local $me i32) (local $offset i64) (local $n i32) (local $p i32) (local $end i32)
    (local $c i32) (local $wlen i32) (local $h i32) (local $arr i32) (local $i i32) (local $e i32)
    (local.set $me (call $self_id))
    (call $new_table (i32.const 1024))

    ;; 1. Count, chunk by chunk. Two tight loops: one over the bytes of a word
    ;; (building the lower-case word and its FNV-1a hash as it goes), one over
    ;; the separators. A word may span two chunks: $wlen and $h carry over.
    (local.set $h (global.get $FNV_OFFSET))
    (block $eof
      (loop $chunk
        (local.set $n (call $input_read (local.get $me) (i32.const 0) (local.get $offset)
                                        (global.get $CHUNK) (global.get $CHUNK_LEN)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $offset (i64.add (local.get $offset) (i64.extend_i32_u (local.get $n))))
        (local.set $p (global.get $CHUNK))
        (local.set $end (i32.add (local.get $p) (local.get $n)))
        (block $chunk_done
          (loop $word_or_separator
            ;; word bytes (none if $p is on a separator)
            (block $word_end
              ;; Unrolled eight times: the runtime's fuel and interruption checks
              ;; sit at loop heads, so this pays them once per eight bytes (and
              ;; once for most words).
              ;; Bytes past WORD_MAX land on the spare byte at WORD + WORD_MAX
              ;; and change neither the hash nor the length.
              (loop $word
                (br_if $chunk_done (i32.ge_u (local.get $p) (local.get $end)))
                (local.set $c (i32.load8_u offset=0x200 (i32.load8_u (local.get $p))))
                (br_if $word_end (i32.eqz (local.get $c)))
                (i32.store8 (i32.add (global.get $WORD) (local.get $wlen)) (local.get $c))
                (local.set $h
                  (select (i32.mul (i32.xor (local.get $h) (local.get $c))
                                   (i32.const 0x01000193))
                          (local.get $h)
                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $wlen (i32.add (local.get $wlen)
                                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                ;; (same step, 2 of 8)
                (br_if $chunk_done (i32.ge_u (local.get $p) (local.get $end)))
                (local.set $c (i32.load8_u offset=0x200 (i32.load8_u (local.get $p))))
                (br_if $word_end (i32.eqz (local.get $c)))
                (i32.store8 (i32.add (global.get $WORD) (local.get $wlen)) (local.get $c))
                (local.set $h
                  (select (i32.mul (i32.xor (local.get $h) (local.get $c))
                                   (i32.const 0x01000193))
                          (local.get $h)
                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $wlen (i32.add (local.get $wlen)
                                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                ;; (same step, 3 of 8)
                (br_if $chunk_done (i32.ge_u (local.get $p) (local.get $end)))
                (local.set $c (i32.load8_u offset=0x200 (i32.load8_u (local.get $p))))
                (br_if $word_end (i32.eqz (local.get $c)))
                (i32.store8 (i32.add (global.get $WORD) (local.get $wlen)) (local.get $c))
                (local.set $h
                  (select (i32.mul (i32.xor (local.get $h) (local.get $c))
                                   (i32.const 0x01000193))
                          (local.get $h)
                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $wlen (i32.add (local.get $wlen)
                                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                ;; (same step, 4 of 8)
                (br_if $chunk_done (i32.ge_u (local.get $p) (local.get $end)))
                (local.set $c (i32.load8_u offset=0x200 (i32.load8_u (local.get $p))))
                (br_if $word_end (i32.eqz (local.get $c)))
                (i32.store8 (i32.add (global.get $WORD) (local.get $wlen)) (local.get $c))
                (local.set $h
                  (select (i32.mul (i32.xor (local.get $h) (local.get $c))
                                   (i32.const 0x01000193))
                          (local.get $h)
                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $wlen (i32.add (local.get $wlen)
                                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                ;; (same step, 5 of 8)
                (br_if $chunk_done (i32.ge_u (local.get $p) (local.get $end)))
                (local.set $c (i32.load8_u offset=0x200 (i32.load8_u (local.get $p))))
                (br_if $word_end (i32.eqz (local.get $c)))
                (i32.store8 (i32.add (global.get $WORD) (local.get $wlen)) (local.get $c))
                (local.set $h
                  (select (i32.mul (i32.xor (local.get $h) (local.get $c))
                                   (i32.const 0x01000193))
                          (local.get $h)
                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $wlen (i32.add (local.get $wlen)
                                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                ;; (same step, 6 of 8)
                (br_if $chunk_done (i32.ge_u (local.get $p) (local.get $end)))
                (local.set $c (i32.load8_u offset=0x200 (i32.load8_u (local.get $p))))
                (br_if $word_end (i32.eqz (local.get $c)))
                (i32.store8 (i32.add (global.get $WORD) (local.get $wlen)) (local.get $c))
                (local.set $h
                  (select (i32.mul (i32.xor (local.get $h) (local.get $c))
                                   (i32.const 0x01000193))
                          (local.get $h)
                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $wlen (i32.add (local.get $wlen)
                                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                ;; (same step, 7 of 8)
                (br_if $chunk_done (i32.ge_u (local.get $p) (local.get $end)))
                (local.set $c (i32.load8_u offset=0x200 (i32.load8_u (local.get $p))))
                (br_if $word_end (i32.eqz (local.get $c)))
                (i32.store8 (i32.add (global.get $WORD) (local.get $wlen)) (local.get $c))
                (local.set $h
                  (select (i32.mul (i32.xor (local.get $h) (local.get $c))
                                   (i32.const 0x01000193))
                          (local.get $h)
                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $wlen (i32.add (local.get $wlen)
                                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                ;; (same step, 8 of 8)
                (br_if $chunk_done (i32.ge_u (local.get $p) (local.get $end)))
                (local.set $c (i32.load8_u offset=0x200 (i32.load8_u (local.get $p))))
                (br_if $word_end (i32.eqz (local.get $c)))
                (i32.store8 (i32.add (global.get $WORD) (local.get $wlen)) (local.get $c))
                (local.set $h
                  (select (i32.mul (i32.xor (local.get $h) (local.get $c))
                                   (i32.const 0x01000193))
                          (local.get $h)
                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $wlen (i32.add (local.get $wlen)
                                          (i32.lt_u (local.get $wlen) (global.get $WORD_MAX))))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (br $word)))
            ;; $p is on a separator: count the word that ended there, if any.
            ;; Fast path, inline (no call, no loop): a word of at most 8 bytes
            ;; found in its home slot is compared in one masked 8-byte load.
            ;; Everything else goes through $count_word.
            (if (local.get $wlen)
              (then
                (local.set $e
                  (i32.add (global.get $table)
                           (i32.shl (i32.and (local.get $h)
                                             (i32.sub (global.get $cap) (i32.const 1)))
                                    (i32.const 4))))
                (block $counted
                  (if (i32.and (i32.and (i32.eq (i32.load offset=8 (local.get $e)) (local.get $h))
                                        (i32.eq (i32.load offset=4 (local.get $e)) (local.get $wlen)))
                               (i32.le_u (local.get $wlen) (i32.const 8)))
                    (then
                      (if (i64.eqz
                            (i64.and
                              (i64.xor (i64.load (i32.load (local.get $e)))
                                       (i64.load (global.get $WORD)))
                              (i64.shr_u (i64.const -1)
                                         (i64.extend_i32_u
                                           (i32.sub (i32.const 64)
                                                    (i32.shl (local.get $wlen) (i32.const 3)))))))
                        (then
                          (i32.store offset=12 (local.get $e)
                                     (i32.add (i32.load offset=12 (local.get $e)) (i32.const 1)))
                          (br $counted)))))
                  (call $count_word (global.get $WORD) (local.get $wlen) (local.get $h)))
                (local.set $wlen (i32.const 0))
                (local.set $h (global.get $FNV_OFFSET))))
            ;; separators (unrolled four times too)
            (block $separator_end
              (loop $separator
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (br_if $chunk_done (i32.ge_u (local.get $p) (local.get $end)))
                (br_if $separator_end (i32.load8_u offset=0x200 (i32.load8_u (local.get $p))))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (br_if $chunk_done (i32.ge_u (local.get $p) (local.get $end)))
                (br_if $separator_end (i32.load8_u offset=0x200 (i32.load8_u (local.get $p))))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (br_if $chunk_done (i32.ge_u (local.get $p) (local.get $end)))
                (br_if $separator_end (i32.load8_u offset=0x200 (i32.load8_u (local.get $p))))
                (local.set $p (i32.add (local.get $p) (i32.const 1)))
                (br_if $chunk_done (i32.ge_u (local.get $p) (local.get $end)))
                (br_if $separator_end (i32.load8_u offset=0x200 (i32.load8_u (local.get $p))))
                (br $separator)))
            (br $word_or_separator)))
        (br $chunk)))
    (if (local.get $wlen)
      (then (call $count_word (global.get $WORD) (local.get $wlen) (local.get $h))))

    ;; 2. Collect the entries and sort them.
    (local.set $arr (call $alloc (i32.shl (global.get $used) (i32.const 2))))
    (local.set $n (i32.const 0))
    (block $done
      (loop $slot
        (br_if $done (i32.ge_u (local.get $i) (global.get $cap)))
        (local.set $e (i32.add (global.get $table) (i32.shl (local.get $i) (i32.const 4))))
        (if (i32.load (local.get $e))
          (then
            (i32.store (i32.add (local.get $arr) (i32.shl (local.get $n) (i32.const 2)))
                       (local.get $e))
            (local.set $n (i32.add (local.get $n) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $slot)))
    (call $sort (local.get $arr) (local.get $n))

    ;; 3. Write "word count" lines.
    (local.set $i (i32.const 0))
    (block $done
      (loop $line
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $e (call $at (local.get $arr) (local.get $i)))
        (call $emit (i32.load (local.get $e)) (i32.load offset=4 (local.get $e)))
        (call $emit_byte (i32.const 32))
        (call $emit_u32 (i32.load offset=12 (local.get $e)))
        (call $emit_byte (i32.const 10))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $line)))
    (call $flush)
    (i32.const 0))
)
