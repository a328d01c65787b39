# The linearizability checker for simulator histories (linearize.h) and its
# unit test. Included from tests/sim/CMakeLists.txt: include(linearize.cmake)
add_library(rabia_linearize STATIC ${CMAKE_CURRENT_LIST_DIR}/linearize.c)
target_include_directories(rabia_linearize PUBLIC ${CMAKE_CURRENT_LIST_DIR})

add_executable(test_linearize ${CMAKE_CURRENT_LIST_DIR}/test_linearize.c)
target_include_directories(test_linearize PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_linearize PRIVATE rabia_linearize)
add_test(NAME sim.linearize COMMAND test_linearize)

# The same checker over a history file recorded by real clients against real
# replicas (tests/integration/jepsen.sh): lincheck FILE.
add_executable(lincheck ${CMAKE_CURRENT_LIST_DIR}/lincheck.c)
target_link_libraries(lincheck PRIVATE rabia_linearize)
add_test(NAME sim.lincheck COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/lincheck_test.sh $<TARGET_FILE:lincheck>)
