// Prints the mean face (initial shape) of a dlib 68-point shape predictor:
// the canonical alignment template of `mcsfau preprocess` comes from it
// (pipeline/src/preprocess/align.rs, TEMPLATE_49_UNIT).
//
// Build and run (Debian's libdlib-dev and libdlib-data):
//   g++ -O1 -o /tmp/dlib_mean_shape scripts/dlib_mean_shape.cpp $(pkg-config --cflags dlib-1)
//   /tmp/dlib_mean_shape /usr/share/dlib/shape_predictor_68_face_landmarks.dat
// Output: one line per iBUG-68 point, `index x y`, in face-box units.
//
// dlib serializes a shape_predictor as: int version, matrix<float,0,1>
// initial_shape (x0, y0, x1, y1, ...), then the forests; only the first two
// are read here.
#include <dlib/matrix.h>
#include <dlib/serialize.h>

#include <cstdio>
#include <fstream>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s shape_predictor_68_face_landmarks.dat\n", argv[0]);
        return 2;
    }
    std::ifstream in(argv[1], std::ios::binary);
    int version;
    dlib::deserialize(version, in);
    dlib::matrix<float, 0, 1> s;
    dlib::deserialize(s, in);
    std::printf("version %d rows %ld\n", version, (long)s.nr());
    for (long i = 0; i < s.nr() / 2; ++i) std::printf("%d %.6f %.6f\n", (int)i, s(2 * i), s(2 * i + 1));
    return 0;
}
