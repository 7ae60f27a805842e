//! An output buffer that parallel tasks write at once, each its own disjoint part (a tile
//! kernel's rectangle or lines), without splitting the slice up front.

use std::marker::PhantomData;

/// `out`, borrowed for as long as the tasks run.
pub struct SharedOut<'a> {
    ptr: *mut f32,
    len: usize,
    _out: PhantomData<&'a mut [f32]>,
}

// SAFETY: tasks write disjoint parts (see `segment`); the buffer is borrowed for `'a`.
unsafe impl Send for SharedOut<'_> {}
unsafe impl Sync for SharedOut<'_> {}

impl<'a> SharedOut<'a> {
    pub fn new(out: &'a mut [f32]) -> Self {
        SharedOut { ptr: out.as_mut_ptr(), len: out.len(), _out: PhantomData }
    }

    /// `out`, whose values the tasks write before anyone reads them (no [`segment`] of it may
    /// be taken: a slice of uninitialised floats; the tasks write through [`pointer`]).
    ///
    /// [`segment`]: SharedOut::segment
    /// [`pointer`]: SharedOut::pointer
    pub fn uninit(out: &'a mut [std::mem::MaybeUninit<f32>]) -> Self {
        SharedOut { ptr: out.as_mut_ptr().cast::<f32>(), len: out.len(), _out: PhantomData }
    }

    /// The start of `len` values from `start` (bounds checked), to write through without a
    /// slice (into an [`uninit`](SharedOut::uninit) output).
    pub fn pointer(&self, start: usize, len: usize) -> *mut f32 {
        assert!(start.checked_add(len).is_some_and(|end| end <= self.len), "output segment out of bounds");
        // SAFETY: `start` lies inside the buffer (checked above).
        unsafe { self.ptr.add(start) }
    }

    /// `len` values from `start` (bounds checked).
    ///
    /// # Safety
    /// No two live segments may overlap.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn segment(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(start.checked_add(len).is_some_and(|end| end <= self.len), "output segment out of bounds");
        std::slice::from_raw_parts_mut(self.ptr.add(start), len)
    }
}
